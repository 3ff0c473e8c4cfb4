//! A published port: `[host_ip:][published:]target[/protocol]`, short or long syntax.

use std::fmt;

use serde_yaml::Value;

use super::merge::scalar_string;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortBinding {
    /// `None`: every interface (Docker's default, 0.0.0.0 and ::).
    pub host_ip: Option<String>,
    /// `None`: an ephemeral port Docker picks.
    pub published: Option<u16>,
    pub target: u16,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
}

impl PortBinding {
    /// Whether both would bind the same host port (same protocol, overlapping addresses).
    pub fn conflicts_with(&self, other: &PortBinding) -> bool {
        let (Some(a), Some(b)) = (self.published, other.published) else {
            return false;
        };
        let any = |ip: &Option<String>| {
            ip.as_deref()
                .is_none_or(|ip| ip.is_empty() || ip == "0.0.0.0" || ip == "::")
        };
        a == b
            && self.protocol == other.protocol
            && (any(&self.host_ip) || any(&other.host_ip) || self.host_ip == other.host_ip)
    }

    /// Docker's key for this port: `8000/tcp`.
    pub fn container_port_key(&self) -> String {
        format!("{}/{}", self.target, self.protocol)
    }

    /// Parses one `ports:` entry; ranges expand to one binding per port.
    pub fn parse(entry: &Value) -> Result<Vec<PortBinding>, String> {
        match entry {
            Value::Mapping(map) => {
                let target = map
                    .get("target")
                    .and_then(scalar_string)
                    .ok_or("a long-syntax port needs `target`")?;
                let target = parse_port(&target)?;
                let published = match map.get("published").and_then(scalar_string) {
                    Some(p) if !p.is_empty() => Some(parse_port(&p)?),
                    _ => None,
                };
                let protocol =
                    protocol(map.get("protocol").and_then(Value::as_str).unwrap_or("tcp"))?;
                let host_ip = map
                    .get("host_ip")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                Ok(vec![PortBinding {
                    host_ip,
                    published,
                    target,
                    protocol,
                }])
            }
            other => {
                let spec = scalar_string(other).ok_or("a port is a string like \"8080:80\"")?;
                parse_short(&spec)
            }
        }
    }
}

impl fmt::Display for PortBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.host_ip, self.published) {
            (Some(ip), Some(p)) => write!(f, "{ip}:{p}->")?,
            (None, Some(p)) => write!(f, "{p}->")?,
            (Some(ip), None) => write!(f, "{ip}:->")?,
            (None, None) => {}
        }
        write!(f, "{}/{}", self.target, self.protocol)
    }
}

fn protocol(text: &str) -> Result<String, String> {
    match text.to_ascii_lowercase().as_str() {
        p @ ("tcp" | "udp" | "sctp") => Ok(p.to_owned()),
        other => Err(format!("unknown protocol `{other}` (tcp, udp or sctp)")),
    }
}

fn parse_port(text: &str) -> Result<u16, String> {
    match text.trim().parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(format!("`{text}` is not a port number (1-65535)")),
    }
}

fn parse_range(text: &str) -> Result<(u16, u16), String> {
    match text.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (parse_port(a)?, parse_port(b)?);
            if a > b {
                return Err(format!("port range `{text}` runs backwards"));
            }
            Ok((a, b))
        }
        None => {
            let port = parse_port(text)?;
            Ok((port, port))
        }
    }
}

fn parse_short(spec: &str) -> Result<Vec<PortBinding>, String> {
    let (rest, protocol) = match spec.rsplit_once('/') {
        Some((rest, proto)) => (rest, protocol(proto)?),
        None => (spec, "tcp".to_owned()),
    };
    // An IPv6 host address is written in brackets: "[::1]:8080:80".
    let (host_ip, rest) = if let Some(after) = rest.strip_prefix('[') {
        let (ip, rest) = after
            .split_once("]:")
            .ok_or_else(|| format!("`{spec}`: unterminated IPv6 address"))?;
        (Some(ip.to_owned()), rest)
    } else {
        (None, rest)
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (host_ip, published, target) = match (host_ip, parts.as_slice()) {
        (None, [target]) => (None, None, *target),
        (None, [published, target]) => (None, Some(*published), *target),
        (None, [ip, published, target]) => (Some((*ip).to_owned()), Some(*published), *target),
        (Some(ip), [published, target]) => (Some(ip), Some(*published), *target),
        _ => {
            return Err(format!(
                "`{spec}` is not [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL]"
            ));
        }
    };
    let published = published.filter(|p| !p.is_empty());
    let (t_start, t_end) = parse_range(target)?;
    let published_range = published.map(parse_range).transpose()?;
    if let Some((p_start, p_end)) = published_range {
        if p_end - p_start != t_end - t_start {
            return Err(format!(
                "`{spec}`: the host and container port ranges differ in length"
            ));
        }
    }
    Ok((t_start..=t_end)
        .enumerate()
        .map(|(i, target)| PortBinding {
            host_ip: host_ip.clone(),
            published: published_range.map(|(start, _)| start + i as u16),
            target,
            protocol: protocol.clone(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(spec: &str) -> PortBinding {
        let mut all = PortBinding::parse(&Value::from(spec)).unwrap();
        assert_eq!(all.len(), 1);
        all.remove(0)
    }

    #[test]
    fn short_syntax() {
        let p = one("127.0.0.1:8001:8000");
        assert_eq!(
            (
                p.host_ip.as_deref(),
                p.published,
                p.target,
                p.protocol.as_str()
            ),
            (Some("127.0.0.1"), Some(8001), 8000, "tcp")
        );
        let p = one("8080:80/udp");
        assert_eq!(
            (p.host_ip, p.published, p.target, p.protocol.as_str()),
            (None, Some(8080), 80, "udp")
        );
        let p = one("9000");
        assert_eq!((p.published, p.target), (None, 9000));
        let p = one("127.0.0.1::5432");
        assert_eq!(
            (p.host_ip.as_deref(), p.published),
            (Some("127.0.0.1"), None)
        );
        let p = one("[::1]:8080:80");
        assert_eq!(
            (p.host_ip.as_deref(), p.published),
            (Some("::1"), Some(8080))
        );
        assert_eq!(p.to_string(), "::1:8080->80/tcp");
        let range = PortBinding::parse(&Value::from("8000-8002:9000-9002")).unwrap();
        assert_eq!(range.len(), 3);
        assert_eq!((range[2].published, range[2].target), (Some(8002), 9002));
    }

    #[test]
    fn long_syntax() {
        let entry: Value = serde_yaml::from_str(
            "{target: 80, published: \"8080\", host_ip: 127.0.0.1, protocol: udp}",
        )
        .unwrap();
        let p = PortBinding::parse(&entry).unwrap().remove(0);
        assert_eq!(
            (p.published, p.target, p.protocol.as_str()),
            (Some(8080), 80, "udp")
        );
    }

    #[test]
    fn rejects_bad_ports() {
        for bad in [
            "abc",
            "70000:80",
            "80:0",
            "1:2:3:4",
            "8000-7999:1-2",
            "80/http",
            "8000-8001:80",
        ] {
            assert!(PortBinding::parse(&Value::from(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn conflicts() {
        let a = one("127.0.0.1:8080:80");
        assert!(a.conflicts_with(&one("8080:81")));
        assert!(a.conflicts_with(&one("127.0.0.1:8080:82")));
        assert!(!a.conflicts_with(&one("127.0.0.2:8080:80")));
        assert!(!a.conflicts_with(&one("8080:80/udp")));
        assert!(!a.conflicts_with(&one("80")));
    }
}
