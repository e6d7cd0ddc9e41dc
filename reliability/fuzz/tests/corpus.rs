//! Every target on every input of its seed corpus and of its regressions, then on
//! deterministic mutations of them (`CQRS_FUZZ_MUTATIONS` per target, 2,000 by
//! default; `scripts/soak.sh` raises it). A target must not panic on any of them.

use std::path::{Path, PathBuf};

use cqrs_fuzz::mutate::{Rng, mutate};
use cqrs_fuzz::{TARGETS, Target};

fn inputs(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, bytes)
        })
        .collect()
}

fn mutations() -> usize {
    std::env::var("CQRS_FUZZ_MUTATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000)
}

fn replay(name: &str) {
    let target: &Target = TARGETS
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no target {name}"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let seeds = inputs(&root.join("corpus").join(name));
    assert!(
        seeds.len() >= 3,
        "{name}: the seed corpus corpus/{name}/ has {} inputs (at least 3 expected)",
        seeds.len()
    );
    let regressions = inputs(&root.join("regressions").join(name));
    for (path, bytes) in seeds.iter().chain(&regressions) {
        eprintln!("{name}: {}", path.display());
        (target.run)(bytes);
    }
    let all: Vec<&[u8]> = seeds
        .iter()
        .chain(&regressions)
        .map(|(_, b)| b.as_slice())
        .collect();
    let mut rng = Rng::new(0x5EED ^ name.len() as u64);
    for i in 0..mutations() {
        let input = mutate(all[i % all.len()], all[rng.below(all.len())], &mut rng);
        let outcome = std::panic::catch_unwind(|| (target.run)(&input));
        if outcome.is_err() {
            let dir = std::env::temp_dir().join("cqrs-fuzz-failures");
            let _ = std::fs::create_dir_all(&dir);
            let path = dir.join(format!("{name}-{i}"));
            let _ = std::fs::write(&path, &input);
            panic!(
                "{name}: mutation {i} panicked; the input is in {} (minimize it and add it \
                 to regressions/{name}/)",
                path.display()
            );
        }
    }
}

macro_rules! targets {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                replay(stringify!($name));
            }
        )*

        #[test]
        fn every_target_is_replayed() {
            let tested = [$(stringify!($name)),*];
            for target in TARGETS {
                assert!(tested.contains(&target.name), "{} is not replayed here", target.name);
            }
        }
    };
}

targets!(
    envelope,
    pgoutput,
    binlog,
    binlog_row,
    kafka_record,
    debezium,
    graphql,
    fcm_reply
);
