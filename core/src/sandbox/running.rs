//! This installation's agent containers as the engine lists them, for
//! `pincer status`: the engine, not the daemon, is the witness of what runs.

use std::collections::{BTreeMap, HashMap};

use bollard::models::ContainerSummary;
use bollard::query_parameters::ListContainersOptionsBuilder;

use super::{LABEL_INSTALLATION, Sandbox, SandboxError, engine};

/// One agent container of this installation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RunningContainer {
    /// The engine's id, shortened as its CLI shows it.
    pub id: String,
    /// The labels its spec gave it (what they mean is the caller's business).
    pub labels: BTreeMap<String, String>,
    /// The engine's state (`running`, `created`, `exited`, …).
    pub state: String,
    /// Seconds since the engine created it.
    pub age_seconds: u64,
}

impl Sandbox {
    /// The engine's list of this installation's containers, running or not.
    pub(super) async fn own_containers(&self) -> Result<Vec<ContainerSummary>, SandboxError> {
        let filters = HashMap::from([(
            "label".to_owned(),
            vec![format!("{LABEL_INSTALLATION}={}", self.installation)],
        )]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let listed = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(engine("listing containers"))?;
        // The engine filtered on the label already; checked again rather than trusted.
        Ok(listed
            .into_iter()
            .filter(|c| {
                c.labels.as_ref().and_then(|l| l.get(LABEL_INSTALLATION))
                    == Some(&self.installation)
            })
            .collect())
    }

    /// Every container of this installation, running or not, oldest first.
    pub async fn containers(&self) -> Result<Vec<RunningContainer>, SandboxError> {
        let listed = self.own_containers().await?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut containers: Vec<RunningContainer> = listed
            .into_iter()
            .filter_map(|container| {
                let labels = container.labels.unwrap_or_default();
                let created = container
                    .created
                    .and_then(|c| u64::try_from(c).ok())
                    .unwrap_or(now);
                Some(RunningContainer {
                    id: container.id?.chars().take(12).collect(),
                    labels: labels.into_iter().collect(),
                    state: container.state.map(|s| s.to_string()).unwrap_or_default(),
                    age_seconds: now.saturating_sub(created),
                })
            })
            .collect();
        containers.sort_by_key(|c| std::cmp::Reverse(c.age_seconds));
        Ok(containers)
    }
}
