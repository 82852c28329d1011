//! gVisor (skill `gvisor`): checks for `pincer doctor` that the engine has
//! `runsc` registered the way Pincer's containers need it.
//!
//! Agents run under gVisor when `runtime = "runsc"` (or `PINCER_RUNTIME`);
//! gVisor then stands between the agent and the host's kernel. Pincer's
//! containers have no network and reach the host through a Unix socket, so
//! runsc must run with `--network=none` and `--host-uds=open`.

use pincer_assistant::Registry;
use pincer_assistant::config::Settings;
use pincer_assistant::registry::Check;
use pincer_assistant::registry::EngineFacts;

/// Adds the checks below to `pincer doctor` (the binary's registry file
/// calls this, one line).
pub fn register(registry: &mut Registry) {
    registry.add_doctor_check(checks);
}

/// The doctor's checks for the runtime these settings choose.
fn checks(settings: &Settings, facts: &EngineFacts) -> Vec<Check> {
    doctor(settings.runtime.as_deref(), facts)
        .into_iter()
        .map(|(check, ok, detail)| Check { check, ok, detail })
        .collect()
}

/// The runtime arguments Pincer's containers need under runsc.
pub const REQUIRED_ARGS: &[&str] = &["--network=none", "--host-uds=open"];

/// (check, ok, detail) lines for `pincer doctor`.
pub fn doctor(configured: Option<&str>, facts: &EngineFacts) -> Vec<(String, bool, String)> {
    let mut checks = Vec::new();
    match facts.runtimes.get("runsc") {
        None => checks.push((
            "gvisor".to_owned(),
            false,
            "runsc is not registered with the engine: add it to /etc/docker/daemon.json \
             (\"runtimes\": {\"runsc\": {\"path\": \"/usr/bin/runsc\", \"runtimeArgs\": [\"--network=none\", \"--host-uds=open\"]}}) \
             and reload the engine (SIGHUP to dockerd)"
                .to_owned(),
        )),
        Some((path, args)) => {
            let missing: Vec<&str> = REQUIRED_ARGS.iter().copied().filter(|a| !args.iter().any(|x| x == a)).collect();
            checks.push((
                "gvisor".to_owned(),
                missing.is_empty(),
                if missing.is_empty() {
                    format!("runsc is registered ({path} {})", args.join(" "))
                } else {
                    format!("runsc is registered but lacks {}: agents could not reach the host socket", missing.join(" "))
                },
            ));
        }
    }
    let used = configured == Some("runsc");
    checks.push((
        "gvisor use".to_owned(),
        true,
        if used {
            "agents run under gVisor".to_owned()
        } else {
            "agents do not run under gVisor: set runtime = \"runsc\" in config.toml".to_owned()
        },
    ));
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(runtimes: &[(&str, &[&str])]) -> EngineFacts {
        EngineFacts {
            version: "x".into(),
            api_version: "1.41".into(),
            default_runtime: "runc".into(),
            runtimes: runtimes
                .iter()
                .map(|(n, a)| {
                    (
                        n.to_string(),
                        (
                            "/usr/bin/runsc".to_owned(),
                            a.iter().map(|s| s.to_string()).collect(),
                        ),
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn the_checks_see_missing_runsc_and_missing_arguments() {
        assert!(!doctor(None, &facts(&[("runc", &[])]))[0].1);
        assert!(!doctor(None, &facts(&[("runsc", &["--network=none"])]))[0].1);
        let good = doctor(
            Some("runsc"),
            &facts(&[("runsc", &["--network=none", "--host-uds=open"])]),
        );
        assert!(good.iter().all(|c| c.1), "{good:?}");
        assert_eq!(good[1].2, "agents run under gVisor");
    }

    #[test]
    fn register_adds_the_checks_to_the_doctor() {
        let settings =
            Settings::from_env(|name| (name == "PINCER_RUNTIME").then(|| "runsc".to_owned()))
                .unwrap();
        let registry = Registry::with(register);
        let checks = registry.doctor(&settings, &facts(&[("runc", &[])]));
        let names: Vec<_> = checks.iter().map(|c| (c.check.as_str(), c.ok)).collect();
        assert_eq!(names, [("gvisor", false), ("gvisor use", true)]);
        assert_eq!(checks[1].detail, "agents run under gVisor");
    }
}
