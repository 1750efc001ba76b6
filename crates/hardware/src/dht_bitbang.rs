//! The DHT read by bit-banging a GPIO line, for a Pi without the `dht11` overlay.
//!
//! The host pulls the line low (18 ms for a DHT11, 1 ms for a DHT22), releases it to the
//! pull-up, and the sensor answers: 80 µs low, 80 µs high, then 40 bits, each a 50 µs low
//! followed by a high of 26-28 µs (0) or 70 µs (1). [`capture_high_pulses`] samples the line
//! and measures the high pulses; [`bits_from_pulses`] and [`decode_frame`] decode them. User
//! space on Linux misses edges when it is preempted, which is why the IIO driver is the
//! recommended backend and why every read here is retried.
//!
//! The sampling is written against [`DhtLine`], so the capture loop is tested on recorded
//! waveforms; [`GpioLine`] is the rppal implementation.

use std::time::{Duration, Instant};

use rppal::gpio::{Bias, Gpio, IoPin, Mode};

use crate::dht::{bits_from_pulses, decode_frame, Model, Reading};
use crate::error::HardwareError;

/// A frame lasts at most 80 + 80 + 40 × (50 + 70) µs = 5 ms; anything later is not the frame.
pub const FRAME_WINDOW: Duration = Duration::from_micros(6_000);

/// The line a DHT is on.
pub trait DhtLine {
    /// Pulls the line low for `hold` (the start signal), then releases it as an input with
    /// the pull-up; the clock of [`DhtLine::sample`] starts at the release.
    fn start(&mut self, hold: Duration);
    /// The line's level now (`true`: high) and the time since the release.
    fn sample(&mut self) -> (bool, Duration);
}

/// How long the host holds the line low to wake the sensor.
pub fn start_hold(model: Model) -> Duration {
    match model {
        Model::Dht11 => Duration::from_millis(18),
        Model::Dht22 => Duration::from_millis(1),
    }
}

/// Wakes the sensor and measures every complete high pulse (rising then falling edge) within
/// `window`, in µs. The last 41 are the response pulse and the 40 bits; what comes before is
/// the line floating high between the release and the sensor's answer.
pub fn capture_high_pulses(
    line: &mut impl DhtLine,
    model: Model,
    window: Duration,
) -> Result<Vec<u32>, HardwareError> {
    line.start(start_hold(model));
    let mut pulses = Vec::with_capacity(48);
    let (mut high, mut at) = line.sample();
    let mut rose_at = high.then_some(at);
    while at < window {
        let (now_high, now) = line.sample();
        if now_high != high {
            match (now_high, rose_at) {
                (true, _) => rose_at = Some(now),
                (false, Some(rose)) => {
                    let micros = (now - rose).as_micros();
                    pulses.push(u32::try_from(micros).unwrap_or(u32::MAX));
                    rose_at = None;
                }
                (false, None) => {}
            }
            high = now_high;
        }
        at = now;
    }
    if pulses.len() < 40 {
        return Err(HardwareError::BadRead {
            what: "DHT frame".into(),
            why: format!(
                "{} high pulses captured, expected 41 (edges missed, or no sensor on the line)",
                pulses.len()
            ),
        });
    }
    let keep = pulses.len().min(41);
    Ok(pulses.split_off(pulses.len() - keep))
}

/// One bit-banged reading: capture, bits, checksum and scaling.
pub fn read_line(line: &mut impl DhtLine, model: Model) -> Result<Reading, HardwareError> {
    let pulses = capture_high_pulses(line, model, FRAME_WINDOW)?;
    decode_frame(bits_from_pulses(&pulses)?, model)
}

/// A GPIO line through rppal, sampled by busy-polling its level.
pub struct GpioLine {
    pin: IoPin,
    released_at: Instant,
}

impl GpioLine {
    /// Opens BCM GPIO `pin`; the error says why it cannot (not a Pi, no permission).
    pub fn open(pin: u8) -> Result<GpioLine, HardwareError> {
        let unavailable = |err: &dyn std::fmt::Display| HardwareError::Unavailable {
            what: format!("GPIO {pin} for the DHT ({err})"),
        };
        let gpio = Gpio::new().map_err(|err| unavailable(&err))?;
        let pin = gpio
            .get(pin)
            .map_err(|err| unavailable(&err))?
            .into_io(Mode::Input);
        Ok(GpioLine {
            pin,
            released_at: Instant::now(),
        })
    }
}

impl DhtLine for GpioLine {
    fn start(&mut self, hold: Duration) {
        self.pin.set_mode(Mode::Output);
        self.pin.set_low();
        std::thread::sleep(hold);
        self.pin.set_mode(Mode::Input);
        self.pin.set_bias(Bias::PullUp);
        self.released_at = Instant::now();
    }

    fn sample(&mut self) -> (bool, Duration) {
        (self.pin.is_high(), self.released_at.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A recorded waveform: `(level, µs)` segments after the release, replayed against a clock
    /// that advances `step` per sample, as a polling loop sees the line.
    struct Recorded {
        segments: Vec<(bool, u32)>,
        step: Duration,
        now: Duration,
        held: Option<Duration>,
    }

    impl Recorded {
        fn new(segments: Vec<(bool, u32)>, step_micros: u64) -> Self {
            Recorded {
                segments,
                step: Duration::from_micros(step_micros),
                now: Duration::ZERO,
                held: None,
            }
        }
    }

    impl DhtLine for Recorded {
        fn start(&mut self, hold: Duration) {
            self.held = Some(hold);
        }

        fn sample(&mut self) -> (bool, Duration) {
            let at = self.now;
            self.now += self.step;
            let mut end = Duration::ZERO;
            for (level, micros) in &self.segments {
                end += Duration::from_micros(u64::from(*micros));
                if at < end {
                    return (*level, at);
                }
            }
            (true, at) // released to the pull-up after the frame
        }
    }

    /// The line as a scope shows it for `bytes`: floating high 30 µs, the 80/80 response, 40
    /// bits with a little jitter, the final 50 µs low.
    fn waveform(bytes: [u8; 5]) -> Vec<(bool, u32)> {
        let mut segments = vec![(true, 30), (false, 80), (true, 80)];
        for (at, byte) in bytes.iter().enumerate() {
            for bit in 0..8 {
                let jitter = ((at * 8 + bit) % 3) as u32;
                let high = if byte & (0x80 >> bit) != 0 { 69 } else { 26 } + jitter;
                segments.push((false, 50 + jitter));
                segments.push((true, high));
            }
        }
        segments.push((false, 50));
        segments
    }

    #[test]
    fn a_dht22_frame_sampled_every_microsecond_reads_back() {
        // 65.2 %, -10.1 °C
        let bytes = [0x02, 0x8c, 0x80, 0x65, 0x73];
        let mut line = Recorded::new(waveform(bytes), 1);
        let reading = read_line(&mut line, Model::Dht22).unwrap();
        assert_eq!(line.held, Some(Duration::from_millis(1)));
        assert_eq!(reading.humidity, 65.2);
        assert_eq!(reading.temperature, -10.1);
    }

    #[test]
    fn a_dht11_frame_sampled_coarsely_still_reads_back() {
        // 45.0 %, 21.0 °C, sampled every 7 µs, as a slow Pi's polling loop does.
        let bytes = [45, 0, 21, 0, 66];
        let mut line = Recorded::new(waveform(bytes), 7);
        let reading = read_line(&mut line, Model::Dht11).unwrap();
        assert_eq!(line.held, Some(Duration::from_millis(18)));
        assert_eq!((reading.humidity, reading.temperature), (45.0, 21.0));
    }

    #[test]
    fn missed_edges_are_a_bad_read_not_a_wrong_number() {
        let bytes = [45, 0, 21, 0, 66];
        let mut segments = waveform(bytes);
        // Preempted for 400 µs in the middle of the frame: several bits merge.
        segments.splice(20..30, [(false, 400)]);
        let mut line = Recorded::new(segments, 1);
        let err = read_line(&mut line, Model::Dht11).unwrap_err();
        assert!(
            matches!(&err, HardwareError::BadRead { why, .. } if why.contains("pulses")),
            "{err}"
        );
    }

    #[test]
    fn a_missed_low_that_merges_two_bits_is_refused() {
        // Preempted during one 50 µs low: two highs become one long pulse. With the floating
        // pulse in front there are still 41 pulses, shifted by one: refused, never decoded.
        let bytes = [45, 0, 21, 0, 66];
        let mut segments = waveform(bytes);
        let merged = segments[4].1 + segments[5].1 + segments[6].1;
        segments.splice(4..7, [(true, merged)]);
        let mut line = Recorded::new(segments, 1);
        let err = read_line(&mut line, Model::Dht11).unwrap_err();
        assert!(err.to_string().contains("edges missed"), "{err}");
    }

    #[test]
    fn a_line_with_no_sensor_says_so() {
        let mut line = Recorded::new(vec![], 1); // pulled up, nobody answers
        let err = read_line(&mut line, Model::Dht22).unwrap_err();
        assert!(err.to_string().contains("no sensor"), "{err}");
    }

    #[test]
    fn a_corrupted_bit_fails_the_checksum() {
        let bytes = [45, 0, 21, 0, 66];
        let mut segments = waveform(bytes);
        // Bit 3 of byte 0 (a 0) stretched to look like a 1.
        segments[3 + 2 * 3 + 1].1 = 70;
        let mut line = Recorded::new(segments, 1);
        let err = read_line(&mut line, Model::Dht11).unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
    }
}
