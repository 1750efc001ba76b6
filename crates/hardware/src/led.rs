//! An LED on a GPIO output (the tutorial's, on GPIO 19), through rppal: `switch` on/off and
//! `blink` (off, blink, heartbeat). Off a Raspberry Pi the GPIO cannot be opened, and the
//! component says so at start instead of panicking.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use janitoo_actors::{Component, ComponentError, ComponentInfo, ValueSpec};
use janitoo_protocol::Data;
use rppal::gpio::{Gpio, OutputPin};

use crate::tutorial::{self, BLINK_MODES};

const OFF: u8 = 0;
const BLINK: u8 = 1;
const HEARTBEAT: u8 = 2;

/// A poisoned lock: a thread panicked while holding the LED.
fn lost<T>(_: T) -> ComponentError {
    ComponentError::Unavailable("the LED state is lost".into())
}

/// The LED.
pub struct Led {
    pin_number: u8,
    pin: Arc<Mutex<OutputPin>>,
    switched_on: Mutex<bool>,
    mode: Arc<AtomicU8>,
}

impl Led {
    /// Opens GPIO `pin` as an output; the error says why it cannot (not a Pi, no permission).
    pub fn open(pin_number: u8) -> Result<Led, String> {
        let gpio = Gpio::new().map_err(|err| format!("GPIO is not available on this machine ({err}); on another machine than a Raspberry Pi, run with --simulate"))?;
        let pin = gpio
            .get(pin_number)
            .map_err(|err| format!("GPIO {pin_number}: {err}"))?
            .into_output_low();
        let led = Led {
            pin_number,
            pin: Arc::new(Mutex::new(pin)),
            switched_on: Mutex::new(false),
            mode: Arc::new(AtomicU8::new(OFF)),
        };
        led.start_blinker();
        Ok(led)
    }

    /// A thread that blinks the LED while the mode says so (once a second, or a heartbeat's
    /// double flash), and leaves it alone otherwise.
    fn start_blinker(&self) {
        let (pin, mode) = (self.pin.clone(), self.mode.clone());
        std::thread::Builder::new()
            .name(format!("led-gpio{}", self.pin_number))
            .spawn(move || loop {
                let pattern: &[(bool, u64)] = match mode.load(Ordering::Relaxed) {
                    BLINK => &[(true, 500), (false, 500)],
                    HEARTBEAT => &[(true, 100), (false, 150), (true, 100), (false, 650)],
                    _ => &[],
                };
                if pattern.is_empty() {
                    std::thread::sleep(Duration::from_millis(100));
                }
                for (on, millis) in pattern {
                    if let Ok(mut pin) = pin.lock() {
                        if *on {
                            pin.set_high()
                        } else {
                            pin.set_low()
                        }
                    }
                    std::thread::sleep(Duration::from_millis(*millis));
                }
            })
            .ok();
    }
}

impl Component for Led {
    fn info(&self) -> ComponentInfo {
        ComponentInfo::software("LED (GPIO)")
    }

    fn values(&self) -> Vec<ValueSpec> {
        tutorial::led_values(f64::from(self.pin_number))
    }

    fn read(&self, uuid: &str, _index: u32) -> Result<Data, ComponentError> {
        match uuid {
            "switch" => Ok(Data::from(if *self.switched_on.lock().map_err(lost)? {
                "on"
            } else {
                "off"
            })),
            "blink" => Ok(Data::from(
                BLINK_MODES[usize::from(self.mode.load(Ordering::Relaxed).min(2))],
            )),
            other => Err(ComponentError::NoSuchValue(other.to_owned())),
        }
    }

    fn apply(&self, uuid: &str, _index: u32, data: &Data) -> Result<(), ComponentError> {
        let choice = data.as_str().unwrap_or_default();
        match uuid {
            "switch" => {
                let on = choice == "on";
                self.mode.store(OFF, Ordering::Relaxed);
                let mut pin = self.pin.lock().map_err(lost)?;
                if on {
                    pin.set_high()
                } else {
                    pin.set_low()
                }
                *self.switched_on.lock().map_err(lost)? = on;
                Ok(())
            }
            "blink" => {
                let mode = BLINK_MODES
                    .iter()
                    .position(|mode| *mode == choice)
                    .unwrap_or(0);
                self.mode
                    .store(u8::try_from(mode).unwrap_or(OFF), Ordering::Relaxed);
                Ok(())
            }
            "pin" => Ok(()),
            other => Err(ComponentError::NoSuchValue(other.to_owned())),
        }
    }
}
