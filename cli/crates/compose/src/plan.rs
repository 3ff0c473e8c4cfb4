//! What `up` starts and in which order: the selected services with their dependencies, in
//! waves that can start in parallel, and the longest dependency chain.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::model::Stack;
use super::service::Condition;
use finctl_error::UserError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Every service to start, dependencies before dependents (ties by name).
    pub order: Vec<String>,
    /// `waves[i]` depends only on services of earlier waves: each wave can start at once
    /// when the previous ones are ready.
    pub waves: Vec<Vec<String>>,
    /// Service -> what it waits for, and how.
    pub dependencies: BTreeMap<String, BTreeMap<String, Condition>>,
}

impl Stack {
    /// The services `targets` name, with everything they depend on; all enabled services
    /// when `targets` is empty. A named service is started even when its profile is not
    /// active (as Compose does); an unknown name is an error that suggests the closest one.
    pub fn select(&self, targets: &[String]) -> Result<Vec<String>, UserError> {
        if targets.is_empty() {
            return Ok(self.enabled_services().map(|s| s.name.clone()).collect());
        }
        let mut selected = BTreeSet::new();
        let mut todo: Vec<String> = Vec::new();
        for target in targets {
            self.service(target)?;
            todo.push(target.clone());
        }
        while let Some(name) = todo.pop() {
            if selected.insert(name.clone()) {
                todo.extend(self.services[&name].depends_on.keys().cloned());
            }
        }
        let explicit: BTreeSet<&String> = targets.iter().collect();
        // Dependencies pulled in must be enabled by the profiles (explicit targets need not be).
        for name in &selected {
            if !explicit.contains(name) && !self.services[name].is_enabled(&self.active_profiles) {
                let dependent = selected
                    .iter()
                    .find(|s| self.services[*s].depends_on.contains_key(name))
                    .cloned()
                    .unwrap_or_default();
                return Err(UserError::config(
                    format!(
                        "`{dependent}` depends on `{name}`, which the active profiles do not enable"
                    ),
                    format!(
                        "add --profile {} (or name `{name}` too)",
                        self.services[name].profiles.join(" / --profile ")
                    ),
                ));
            }
        }
        Ok(selected.into_iter().collect())
    }

    /// The start plan for `targets` (see [`Stack::select`]); re-checks host ports for the
    /// selection, since naming a service can bring in one whose profile is not active.
    pub fn plan(&self, targets: &[String]) -> Result<Plan, UserError> {
        let selected = self.select(targets)?;
        let names: Vec<&str> = selected.iter().map(String::as_str).collect();
        check_selected_ports(self, &names)?;
        Ok(Plan::new(self, &selected))
    }
}

fn check_selected_ports(stack: &Stack, names: &[&str]) -> Result<(), UserError> {
    for (i, a) in names.iter().enumerate() {
        for b in &names[i + 1..] {
            for pa in &stack.services[*a].ports {
                if let Some(pb) = stack.services[*b]
                    .ports
                    .iter()
                    .find(|pb| pa.conflicts_with(pb))
                {
                    return Err(UserError::config(
                        format!(
                            "services `{a}` ({pa}) and `{b}` ({pb}) publish the same host port"
                        ),
                        "give one of them another host port",
                    ));
                }
            }
        }
    }
    Ok(())
}

impl Plan {
    /// Builds the plan of `selected` (which must be closed under dependencies and acyclic,
    /// as [`Stack::select`] on a loaded stack guarantees).
    pub fn new(stack: &Stack, selected: &[String]) -> Self {
        let dependencies: BTreeMap<String, BTreeMap<String, Condition>> = selected
            .iter()
            .map(|name| (name.clone(), stack.services[name].depends_on.clone()))
            .collect();
        let mut level: BTreeMap<&str, usize> = BTreeMap::new();
        fn level_of<'a>(
            name: &'a str,
            deps: &'a BTreeMap<String, BTreeMap<String, Condition>>,
            level: &mut BTreeMap<&'a str, usize>,
        ) -> usize {
            if let Some(l) = level.get(name) {
                return *l;
            }
            let l = deps[name]
                .keys()
                .map(|d| level_of(d, deps, level) + 1)
                .max()
                .unwrap_or(0);
            level.insert(name, l);
            l
        }
        for name in selected {
            level_of(name, &dependencies, &mut level);
        }
        let depth = level.values().copied().max().map_or(0, |m| m + 1);
        let mut waves = vec![Vec::new(); depth];
        for (name, l) in &level {
            waves[*l].push((*name).to_owned());
        }
        let order = waves.iter().flatten().cloned().collect();
        Self {
            order,
            waves,
            dependencies,
        }
    }

    /// The longest dependency chain, first to start first (ties: the alphabetically first).
    pub fn critical_path(&self) -> Vec<String> {
        self.critical_path_weighted(|_| Duration::from_secs(1)).0
    }

    /// The chain with the largest total `cost` (e.g. each service's measured start-to-ready
    /// time) and that total: the lower bound on the time to bring the selection up.
    ///
    /// A dependent waits for the whole cost of a `service_healthy` or
    /// `service_completed_successfully` dependency, but only for a `service_started` one to
    /// be started: such a dependency shares its start time with its dependent and is not
    /// part of the dependent's chain.
    pub fn critical_path_weighted(
        &self,
        cost: impl Fn(&str) -> Duration,
    ) -> (Vec<String>, Duration) {
        // When each service starts and finishes if everything starts as soon as it can, and
        // the service whose finish its start waits for.
        struct Times<'a> {
            start: Duration,
            finish: Duration,
            after: Option<&'a str>,
        }
        let mut times: BTreeMap<&str, Times> = BTreeMap::new();
        for name in &self.order {
            let before = self.dependencies[name]
                .iter()
                .map(|(name, condition)| {
                    let d = &times[name.as_str()];
                    match condition {
                        Condition::Started => (d.start, d.after),
                        _ => (d.finish, Some(name.as_str())),
                    }
                })
                .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
            let (start, after) = before.unwrap_or((Duration::ZERO, None));
            times.insert(
                name,
                Times {
                    start,
                    finish: start + cost(name),
                    after,
                },
            );
        }
        let Some((last, total)) = times
            .iter()
            .max_by(|a, b| a.1.finish.cmp(&b.1.finish).then(b.0.cmp(a.0)))
            .map(|(n, t)| (*n, t.finish))
        else {
            return (Vec::new(), Duration::ZERO);
        };
        let mut chain = vec![last.to_owned()];
        let mut current = last;
        while let Some(previous) = times[current].after {
            chain.push(previous.to_owned());
            current = previous;
        }
        chain.reverse();
        (chain, total)
    }

    /// The services that wait for `name` (to know who to start once it is ready).
    pub fn dependents(&self, name: &str) -> Vec<&str> {
        self.dependencies
            .iter()
            .filter(|(_, deps)| deps.contains_key(name))
            .map(|(n, _)| n.as_str())
            .collect()
    }
}
