//! Load data: read a `../shared/bench` dataset, or generate the same TSBS devops model here.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use rand::{Rng, SeedableRng};

/// One request body (HTTP) or one chunk of lines (telnet).
pub struct Batch {
    pub body: Vec<u8>,
    pub points: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Telnet,
}

const FIELDS: [&str; 10] = [
    "usage_user",
    "usage_system",
    "usage_idle",
    "usage_nice",
    "usage_iowait",
    "usage_irq",
    "usage_softirq",
    "usage_steal",
    "usage_guest",
    "usage_guest_nice",
];
const REGIONS: [(&str, &[&str]); 4] = [
    (
        "us-east-1",
        &["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1e"],
    ),
    ("us-west-2", &["us-west-2a", "us-west-2b", "us-west-2c"]),
    ("eu-west-1", &["eu-west-1a", "eu-west-1b", "eu-west-1c"]),
    ("ap-northeast-1", &["ap-northeast-1a", "ap-northeast-1c"]),
];
const START_S: i64 = 1_451_606_400; // 2016-01-01T00:00:00Z
const STEP_S: i64 = 10;

/// Reads `kairos/*.json` or `telnet/*.txt` of a dataset and the point counts of its manifest.
pub fn read_dataset(dir: &Path, format: Format) -> Result<Vec<Batch>> {
    let manifest_path = dir.join("manifest.json");
    let manifest = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("reading {}", manifest_path.display()))?;
    let prefix = match format {
        Format::Json => "kairos/",
        Format::Telnet => "telnet/",
    };
    // The manifest lists files as ["kairos/000000.json", points, bytes]; find them textually
    // so this tool needs no JSON library.
    let mut out = Vec::new();
    for part in manifest.split('[').skip(1) {
        let Some(rest) = part.strip_prefix(&format!("\"{prefix}")) else {
            continue;
        };
        let mut fields = rest.split(',');
        let name = fields.next().unwrap_or_default().trim_end_matches('"');
        let points: u64 = fields
            .next()
            .unwrap_or_default()
            .trim()
            .parse()
            .context("manifest point count")?;
        let path = dir.join(prefix).join(name);
        let body = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        out.push(Batch { body, points });
    }
    anyhow::ensure!(
        !out.is_empty(),
        "no {prefix} files listed in {}",
        manifest_path.display()
    );
    Ok(out)
}

/// TSBS devops cpu-only: `hosts` hosts × 10 `cpu.*` metrics, `steps` readings 10 s apart,
/// each a random walk with N(0,1)-ish steps clamped to [0,100]. Batches hold every series of
/// a time window, about `batch` points each (as `../shared/bench` writes them).
pub fn generate(
    hosts: usize,
    steps: usize,
    float: bool,
    batch: usize,
    format: Format,
) -> Vec<Batch> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let tags: Vec<Vec<(&str, String)>> = (0..hosts)
        .map(|h| {
            let (region, dcs) = REGIONS[rng.gen_range(0..REGIONS.len())];
            vec![
                ("hostname", format!("host_{h}")),
                ("region", region.to_string()),
                ("datacenter", dcs[rng.gen_range(0..dcs.len())].to_string()),
                ("rack", rng.gen_range(0..100).to_string()),
                (
                    "os",
                    ["Ubuntu16.10", "Ubuntu16.04LTS", "Ubuntu15.10"][rng.gen_range(0..3)]
                        .to_string(),
                ),
                ("arch", ["x64", "x86"][rng.gen_range(0..2)].to_string()),
                (
                    "team",
                    ["SF", "NYC", "LON", "CHI"][rng.gen_range(0..4)].to_string(),
                ),
                ("service", rng.gen_range(0..20).to_string()),
                ("service_version", rng.gen_range(0..2).to_string()),
                (
                    "service_environment",
                    ["production", "staging", "test"][rng.gen_range(0..3)].to_string(),
                ),
            ]
        })
        .collect();
    let mut walk: Vec<[f64; 10]> = (0..hosts)
        .map(|_| std::array::from_fn(|_| rng.gen_range(0.0..100.0)))
        .collect();
    let window = (batch / (hosts * FIELDS.len())).max(1);
    let fmt = |v: f64| {
        if float {
            format!("{:.2}", v)
        } else {
            format!("{}", v as i64)
        }
    };

    let mut out = Vec::new();
    let mut w0 = 0;
    while w0 < steps {
        let wn = window.min(steps - w0);
        // values[h][k][f]
        let values: Vec<Vec<[String; 10]>> = walk
            .iter_mut()
            .map(|state| {
                (0..wn)
                    .map(|_| {
                        std::array::from_fn(|f| {
                            // Sum of uniforms: a cheap, bounded stand-in for a N(0,1) step.
                            let step: f64 = (0..4).map(|_| rng.gen_range(-0.866..0.866)).sum();
                            state[f] = (state[f] + step).clamp(0.0, 100.0);
                            fmt(state[f])
                        })
                    })
                    .collect()
            })
            .collect();
        let mut body = Vec::with_capacity(batch * 48);
        match format {
            Format::Json => {
                body.push(b'[');
                for (h, host_tags) in tags.iter().enumerate() {
                    for (f, field) in FIELDS.iter().enumerate() {
                        if body.len() > 1 {
                            body.push(b',');
                        }
                        write!(body, "{{\"name\":\"cpu.{field}\",\"tags\":{{").unwrap();
                        for (i, (k, v)) in host_tags.iter().enumerate() {
                            write!(body, "{}\"{k}\":\"{v}\"", if i > 0 { "," } else { "" })
                                .unwrap();
                        }
                        body.extend_from_slice(b"},\"datapoints\":[");
                        for (k, row) in values[h].iter().enumerate() {
                            let ms = (START_S + (w0 + k) as i64 * STEP_S) * 1000;
                            write!(body, "{}[{ms},{}]", if k > 0 { "," } else { "" }, row[f])
                                .unwrap();
                        }
                        body.extend_from_slice(b"]}");
                    }
                }
                body.push(b']');
            }
            Format::Telnet => {
                for k in 0..wn {
                    let s = START_S + (w0 + k) as i64 * STEP_S;
                    for (host_tags, host_values) in tags.iter().zip(&values) {
                        for (f, field) in FIELDS.iter().enumerate() {
                            write!(body, "put cpu.{field} {s} {}", host_values[k][f]).unwrap();
                            for (k, v) in host_tags {
                                write!(body, " {k}={v}").unwrap();
                            }
                            body.push(b'\n');
                        }
                    }
                }
            }
        }
        out.push(Batch {
            body,
            points: (wn * hosts * FIELDS.len()) as u64,
        });
        w0 += wn;
    }
    out
}

/// Gzips every body (for `--gzip`).
pub fn gzip_all(batches: Vec<Batch>) -> Result<Vec<Batch>> {
    batches
        .into_iter()
        .map(|b| {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(&b.body)?;
            Ok(Batch {
                body: enc.finish()?,
                points: b.points,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_json_batches_hold_the_counted_points() {
        let batches = generate(10, 25, true, 1000, Format::Json);
        assert_eq!(batches.iter().map(|b| b.points).sum::<u64>(), 10 * 10 * 25);
        let body = std::str::from_utf8(&batches[0].body).unwrap();
        assert!(body.starts_with("[{\"name\":\"cpu.usage_user\",\"tags\":{\"hostname\":\"host_0\""));
        // 10 steps per window: 1000 points / 100 series.
        assert_eq!(
            body.matches("],[").count() + body.matches(":[[").count(),
            1000
        );
    }

    #[test]
    fn generated_telnet_lines_are_one_point_each() {
        let batches = generate(3, 4, false, 10_000, Format::Telnet);
        let text = String::from_utf8(batches.concat_bodies()).unwrap();
        assert_eq!(text.lines().count(), 3 * 10 * 4);
        assert!(text
            .lines()
            .all(|l| l.starts_with("put cpu.") && l.split(' ').count() == 14));
    }

    trait Concat {
        fn concat_bodies(&self) -> Vec<u8>;
    }
    impl Concat for Vec<Batch> {
        fn concat_bodies(&self) -> Vec<u8> {
            self.iter().flat_map(|b| b.body.iter().copied()).collect()
        }
    }
}
