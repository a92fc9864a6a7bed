//! Whether the computer is running on its battery. Index runs then use one
//! core whatever the CPU setting, so the first index of a large vault does not
//! drain a laptop or heat it on someone's knees; the full share comes back
//! when it is plugged in (checked again every few seconds).
//!
//! Linux reads sysfs (`/sys/class/power_supply`); macOS asks `pmset`. Where
//! the answer is unknown (other systems, no power supply information, a
//! desktop) the machine counts as on mains.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an answer is reused: reading it costs a few file reads (Linux)
/// or a process (macOS), and index work asks before every batch.
const RECHECK: Duration = Duration::from_secs(10);

/// Whether the machine runs on battery now (cached for a few seconds).
pub fn on_battery() -> bool {
    static LAST: Mutex<Option<(Instant, bool)>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((at, answer)) = *last {
        if at.elapsed() < RECHECK {
            return answer;
        }
    }
    let answer = read_on_battery();
    *last = Some((Instant::now(), answer));
    answer
}

fn read_on_battery() -> bool {
    // Tests and unusual systems can point at another power-supply folder.
    if let Some(dir) = std::env::var_os("SIFT_POWER_SUPPLY_DIR") {
        return on_battery_in(Path::new(&dir));
    }
    #[cfg(target_os = "linux")]
    return on_battery_in(Path::new("/sys/class/power_supply"));
    #[cfg(target_os = "macos")]
    return pmset_says_battery();
    #[allow(unreachable_code)]
    false
}

/// Linux's rule over a sysfs `power_supply` folder: some battery of the
/// system (not a mouse's or a headset's, whose scope is `Device`) is
/// discharging. A plugged-in laptop reports `Charging`, `Full` or
/// `Not charging`; a desktop has no battery at all.
pub fn on_battery_in(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let read = |supply: &Path, name: &str| {
        std::fs::read_to_string(supply.join(name))
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    entries.flatten().any(|entry| {
        let supply = entry.path();
        read(&supply, "type") == "Battery"
            && read(&supply, "scope") != "Device"
            && read(&supply, "status") == "Discharging"
    })
}

#[cfg(target_os = "macos")]
fn pmset_says_battery() -> bool {
    std::process::Command::new("pmset")
        .args(["-g", "batt"])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).contains("'Battery Power'"))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn supply(dir: &Path, name: &str, files: &[(&str, &str)]) {
        let at = dir.join(name);
        std::fs::create_dir_all(&at).unwrap();
        for (file, value) in files {
            std::fs::write(at.join(file), format!("{value}\n")).unwrap();
        }
    }

    #[test]
    fn a_discharging_system_battery_is_on_battery() {
        let dir = tempfile::tempdir().unwrap();
        supply(dir.path(), "AC", &[("type", "Mains"), ("online", "0")]);
        supply(
            dir.path(),
            "BAT0",
            &[("type", "Battery"), ("status", "Discharging")],
        );
        assert!(on_battery_in(dir.path()));
    }

    #[test]
    fn plugged_in_laptops_desktops_and_peripherals_are_not() {
        // A laptop on its charger, full or charging.
        for status in ["Charging", "Full", "Not charging"] {
            let dir = tempfile::tempdir().unwrap();
            supply(dir.path(), "AC", &[("type", "Mains"), ("online", "1")]);
            supply(
                dir.path(),
                "BAT0",
                &[("type", "Battery"), ("status", status)],
            );
            assert!(!on_battery_in(dir.path()), "{status}");
        }
        // A desktop whose wireless mouse runs on its own battery.
        let dir = tempfile::tempdir().unwrap();
        supply(
            dir.path(),
            "hidpp_battery_0",
            &[
                ("type", "Battery"),
                ("scope", "Device"),
                ("status", "Discharging"),
            ],
        );
        assert!(!on_battery_in(dir.path()));
        // No power-supply information at all.
        assert!(!on_battery_in(&dir.path().join("missing")));
    }
}
