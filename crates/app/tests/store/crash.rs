//! Kill a writer process with SIGKILL at random points, many times; after each
//! kill every acknowledged write is present, no operation is half-applied and
//! SQLite's integrity check passes. (SQLite only: it is the engine that lives
//! in the server's process; PostgreSQL's durability is the server's own.)

use arbor_app::App;
use arbor_store::{Store, StoreConfig, Table};
use rand::RngExt;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WRITER: &str = env!("CARGO_BIN_EXE_arbor-crash-writer");
const ROUNDS: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_writer_loses_no_acknowledged_write_and_leaves_no_half_write() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("crash.db").display());
    let setup = Command::new(WRITER).args([&url, "setup"]).output().unwrap();
    assert!(
        setup.status.success(),
        "{}",
        String::from_utf8_lossy(&setup.stderr)
    );
    let ids = String::from_utf8(setup.stdout).unwrap();
    let ids: Vec<&str> = ids.split_whitespace().collect();
    assert_eq!(ids.len(), 3);

    let mut acknowledged = BTreeSet::new();
    let mut rng = rand::rng();
    let mut killed_mid_stream = 0;
    for round in 0..ROUNDS {
        let mut child = Command::new(WRITER)
            .args([url.as_str(), "write", ids[0], ids[1], ids[2]])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (events, acks) = std::sync::mpsc::channel();
        let reader = {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if line != "ready" {
                        lines.lock().unwrap().push(line);
                    }
                    let _ = events.send(());
                }
            })
        };
        acks.recv_timeout(Duration::from_secs(60))
            .expect("writer ready");
        // A random point of the stream, whatever the machine's speed: after a
        // random number of acknowledged writes (0 = before the first one),
        // plus a random fraction of a write.
        let after_writes = rng.random_range(0..15);
        for _ in 0..after_writes {
            acks.recv_timeout(Duration::from_secs(60))
                .expect("writer acknowledges writes");
        }
        std::thread::sleep(Duration::from_micros(rng.random_range(0..3000)));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        reader.join().unwrap();
        let written: Vec<i64> = lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| l.parse().unwrap())
            .collect();
        if !written.is_empty() {
            killed_mid_stream += 1;
        }
        acknowledged.extend(written);
        if round % 10 == 9 || round == ROUNDS - 1 {
            verify(&url, &acknowledged).await;
        }
    }
    assert!(
        killed_mid_stream >= ROUNDS / 2,
        "most kills hit a running stream"
    );
    verify(&url, &acknowledged).await;
}

async fn verify(url: &str, acknowledged: &BTreeSet<i64>) {
    let store = Store::connect(&StoreConfig::new(url)).await.unwrap();
    assert_eq!(store.integrity_check().await.unwrap(), "ok");
    let app = App::new(store.clone());
    let mut tx = app.store().read().await.unwrap();
    let devices = tx.all_devices().await.unwrap();
    let present: BTreeSet<i64> = devices.iter().map(|d| d.id.0).collect();
    let missing: Vec<_> = acknowledged.difference(&present).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    // Whole operations only: each device has its 3 metafields and its one
    // audit row, and no audit row names a device that does not exist.
    for d in &devices {
        assert_eq!(
            tx.device_metafields(d.id).await.unwrap().len(),
            3,
            "device {}",
            d.id
        );
        let log = tx
            .audit_for_target(&format!("device:{}", d.id))
            .await
            .unwrap();
        assert_eq!(log.len(), 1, "device {}", d.id);
    }
    assert_eq!(
        tx.count_rows(Table::DeviceMetafields).await.unwrap(),
        3 * devices.len() as u64
    );
    // hierarchy.create + template.create + one device.create per device.
    assert_eq!(
        tx.count_rows(Table::AuditEvents).await.unwrap(),
        2 + devices.len() as u64
    );
    tx.finish().await.unwrap();
    store.close().await;
}
