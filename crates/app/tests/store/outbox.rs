//! The outbox as several delivery workers see it: claims with a lease, the
//! oldest rows first, each row held by one node at a time; delivered mail
//! keeps no body; failures back off and stop after the maximum; every unsent
//! mail is announced once.

use crate::support::proofs;
use crate::support::*;
use arbor_store::{AuditEvent, Claim, ClientKind, Failure, Store, StoreConfig};
use std::collections::BTreeSet;

both_engines!(
    claims_take_the_oldest_due_rows_and_only_the_holder_settles_them,
    concurrent_claims_from_two_pools_never_share_a_row,
    failures_back_off_and_stop_after_the_maximum,
    each_unsent_mail_is_announced_once,
);

const A: &str = "node-a";
const B: &str = "node-b";

fn claim(node: &str, batch: i64) -> Claim<'_> {
    Claim {
        node,
        batch,
        lease_ms: 60_000,
        max_attempts: 3,
    }
}

/// Queues `n` mails in one committed transaction; their ids, oldest first.
async fn queue(store: &Store, n: usize) -> Vec<i64> {
    let mut tx = store.write().await.unwrap();
    let mut ids = Vec::new();
    for i in 0..n {
        let to = format!("r{i}@acme.example");
        let id = tx
            .enqueue_mail(&proofs::invite(), &to, "Hi", "link: secret", None)
            .await
            .unwrap();
        ids.push(id);
    }
    tx.commit(AuditEvent::new(ClientKind::Cli, "test.queue", "outbox"))
        .await
        .unwrap();
    ids
}

async fn all_mail(store: &Store) -> Vec<arbor_store::MailRecord> {
    let mut tx = store.read().await.unwrap();
    let mut mails = tx.outbox(false, 1000).await.unwrap();
    tx.finish().await.unwrap();
    mails.reverse();
    mails
}

async fn claims_take_the_oldest_due_rows_and_only_the_holder_settles_them(db: TestDb) {
    let store = db.store();
    let ids = queue(store, 25).await;
    let first = store.claim_mail(claim(A, 10)).await.unwrap();
    assert_eq!(
        first.iter().map(|m| m.id).collect::<Vec<_>>(),
        ids[..10],
        "the oldest ten, oldest first"
    );
    let second = store.claim_mail(claim(B, 10)).await.unwrap();
    assert_eq!(second.iter().map(|m| m.id).collect::<Vec<_>>(), ids[10..20]);

    // Only the holder settles a row.
    assert!(!store.mark_mail_sent(first[0].id, B).await.unwrap());
    assert!(store.mark_mail_sent(first[0].id, A).await.unwrap());
    assert!(
        !store.mark_mail_sent(first[0].id, A).await.unwrap(),
        "sent once"
    );
    let sent = all_mail(store).await;
    let sent = sent.iter().find(|m| m.id == first[0].id).unwrap();
    assert!(sent.sent_at.is_some());
    assert_eq!(sent.body, "", "a delivered mail keeps no body");
    assert_eq!(sent.attempts, 1);

    // The rest of A's batch is held until its lease runs out; then B may
    // take it over, oldest first, and A can no longer settle it.
    let third = store.claim_mail(claim(B, 100)).await.unwrap();
    assert_eq!(third.iter().map(|m| m.id).collect::<Vec<_>>(), ids[20..]);
    assert!(store.claim_mail(claim(B, 100)).await.unwrap().is_empty());
    db.clock.advance(60_000);
    let taken_over = store.claim_mail(claim(B, 100)).await.unwrap();
    let expected: Vec<i64> = ids[1..].to_vec();
    assert_eq!(
        taken_over.iter().map(|m| m.id).collect::<Vec<_>>(),
        expected,
        "every unsent row whose lease ran out"
    );
    assert!(!store.mark_mail_sent(ids[1], A).await.unwrap());
    for id in &ids[1..] {
        assert!(store.mark_mail_sent(*id, B).await.unwrap());
    }
    let all = all_mail(store).await;
    assert!(all.iter().all(|m| m.sent_at.is_some() && m.body.is_empty()));
    assert_eq!(store.mail_queue_depth(3).await.unwrap(), 0);
}

async fn concurrent_claims_from_two_pools_never_share_a_row(db: TestDb) {
    let ids = queue(db.store(), 60).await;
    let other = Store::connect_with_clock(&StoreConfig::new(db.url.clone()), db.clock.clone())
        .await
        .unwrap();
    let drain = async |store: Store, node: &'static str| {
        let mut mine = Vec::new();
        loop {
            let batch = store.claim_mail(claim(node, 3)).await.unwrap();
            if batch.is_empty() {
                return mine;
            }
            for mail in batch {
                assert!(store.mark_mail_sent(mail.id, node).await.unwrap());
                mine.push(mail.id);
            }
        }
    };
    let (a, b) = tokio::join!(
        tokio::spawn(drain(db.store().clone(), A)),
        tokio::spawn(drain(other, B))
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut both: Vec<i64> = a.iter().chain(&b).copied().collect();
    both.sort_unstable();
    assert_eq!(both, ids, "each row delivered exactly once ({a:?} / {b:?})");
    let all = all_mail(db.store()).await;
    assert!(all.iter().all(|m| m.attempts == 1 && m.sent_at.is_some()));
}

async fn failures_back_off_and_stop_after_the_maximum(db: TestDb) {
    let store = db.store();
    let id = queue(store, 1).await[0];
    for attempt in 1..=3 {
        let claimed = store.claim_mail(claim(A, 10)).await.unwrap();
        assert_eq!(claimed.len(), 1, "attempt {attempt}");
        assert_eq!(claimed[0].attempts, attempt - 1);
        let failure = Failure {
            node: A,
            error: "451 try later\0",
            retry_in_ms: 30_000,
        };
        assert!(store.mark_mail_failed(id, failure).await.unwrap());
        // Not again before the back-off has passed.
        assert!(store.claim_mail(claim(B, 10)).await.unwrap().is_empty());
        db.clock.advance(30_000);
    }
    // Three failures with at most three attempts: it stays, undelivered,
    // with its last error, and is no longer counted as queued.
    assert!(store.claim_mail(claim(A, 10)).await.unwrap().is_empty());
    let mail = all_mail(store).await.remove(0);
    assert_eq!(mail.attempts, 3);
    assert_eq!(mail.sent_at, None);
    assert_eq!(mail.last_error.as_deref(), Some("451 try later"));
    assert_eq!(mail.body, "link: secret", "kept for the operator");
    assert_eq!(store.mail_queue_depth(3).await.unwrap(), 0);
    assert_eq!(store.mail_queue_depth(10).await.unwrap(), 1);
}

async fn each_unsent_mail_is_announced_once(db: TestDb) {
    let store = db.store();
    let ids = queue(store, 5).await;
    let other = Store::connect_with_clock(&StoreConfig::new(db.url.clone()), db.clock.clone())
        .await
        .unwrap();
    let (a, b) = tokio::join!(store.announce_mail(3), other.announce_mail(3));
    let mut announced: Vec<i64> = a.unwrap().iter().chain(&b.unwrap()).map(|m| m.id).collect();
    announced.extend(store.announce_mail(100).await.unwrap().iter().map(|m| m.id));
    let unique: BTreeSet<i64> = announced.iter().copied().collect();
    assert_eq!(announced.len(), unique.len(), "{announced:?}");
    assert_eq!(unique.into_iter().collect::<Vec<_>>(), ids);
    assert!(store.announce_mail(100).await.unwrap().is_empty());
    let more = queue(store, 1).await;
    let next = other.announce_mail(100).await.unwrap();
    assert_eq!(next.iter().map(|m| m.id).collect::<Vec<_>>(), more);
    assert!(
        all_mail(store)
            .await
            .iter()
            .all(|m| m.announced_at.is_some())
    );
}
