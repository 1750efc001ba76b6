//! # janitoo-hardware
//!
//! Raspberry Pi sensors and outputs read through the kernel (CPU temperature from the thermal
//! zone, DHT through IIO, DS18B20 through 1-Wire, GPIO through rppal), every path resolved under
//! a configurable root so that tests run on fake sysfs trees; plus simulated sensors.
//!
//! Nothing is here yet: the readers are built by the "Raspberry Pi hardware" issue.
