//! Telling the other replicas what changed. Caches (API tokens, token liveness, the MCP
//! protection setting, the upstream registry) are per process; a change made through one
//! replica must reach the others at once, not when their caches expire. On PostgreSQL a change
//! is a `NOTIFY` on one channel, and every replica keeps one connection `LISTEN`ing to it; on
//! SQLite (one process) there is nobody to tell. The store knows no domain: a change is a topic
//! and an optional key, both defined by the domain that publishes them.

use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::Db;

/// The PostgreSQL channel every replica listens on.
pub const CHANNEL: &str = "gatehouse_changes";

/// Topic of the change a replica sees after its listening connection was lost: it may have
/// missed anything, so everything must be forgotten.
pub const EVERYTHING: &str = "*";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub topic: String,
    pub key: Option<String>,
}

impl Change {
    pub fn everything() -> Change {
        Change {
            topic: EVERYTHING.into(),
            key: None,
        }
    }

    pub fn is(&self, topic: &str) -> bool {
        self.topic == topic || self.topic == EVERYTHING
    }

    /// `replica|topic|key`: the sender is named so that it can skip its own changes.
    fn encode(&self, replica: &str) -> String {
        format!(
            "{replica}|{}|{}",
            self.topic,
            self.key.as_deref().unwrap_or_default()
        )
    }

    fn decode(payload: &str) -> Option<(&str, Change)> {
        let mut parts = payload.splitn(3, '|');
        let replica = parts.next()?;
        let topic = parts.next()?.to_string();
        let key = parts.next().filter(|k| !k.is_empty()).map(str::to_string);
        Some((replica, Change { topic, key }))
    }
}

impl Db {
    /// Tells the other replicas (after the change is committed). A failure is logged: their
    /// caches then catch up when they expire (a few seconds), as before replicas existed.
    pub async fn tell_replicas(&self, topic: &str, key: Option<&str>) {
        if !self.is_postgres() {
            return;
        }
        let change = Change {
            topic: topic.into(),
            key: key.map(str::to_string),
        };
        if let Err(e) = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(change.encode(self.replica_id()))
            .execute(self.pool())
            .await
        {
            tracing::warn!(error = %e, topic, "cannot tell the other replicas about a change");
        }
    }

    /// Tells this process's followers as well as the other replicas: for a change whose
    /// consequences belong to another domain than the one making it.
    pub async fn announce(&self, topic: &str, key: Option<&str>) {
        let _ = self.changes.send(Change {
            topic: topic.into(),
            key: key.map(str::to_string),
        });
        self.tell_replicas(topic, key).await;
    }

    /// Changes made by other replicas (and those announced here), as they arrive.
    pub fn changes(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// On PostgreSQL, listens for other replicas' changes until `stop`; returns at once on
    /// SQLite. A lost connection is re-opened, and then everything is forgotten once.
    pub async fn listen_for_changes(&self, stop: CancellationToken) {
        let Some(url) = self.postgres_url() else {
            return;
        };
        let mut listener: Option<PgListener> = None;
        loop {
            if stop.is_cancelled() {
                return;
            }
            let active = match listener.as_mut() {
                Some(l) => l,
                None => match connect(url).await {
                    Ok(l) => {
                        // Whatever happened while nobody listened is unknown. On the first
                        // connection too: start-up read the upstream registry before this
                        // listener existed, and a change made in between would be missed.
                        let _ = self.changes.send(Change::everything());
                        listener.insert(l)
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot listen for other replicas' changes; retrying");
                        tokio::select! {
                            _ = stop.cancelled() => return,
                            _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        }
                    }
                },
            };
            let received = tokio::select! {
                _ = stop.cancelled() => return,
                r = active.try_recv() => r,
            };
            match received {
                Ok(Some(notification)) => {
                    if let Some((from, change)) = Change::decode(notification.payload())
                        && from != self.replica_id()
                    {
                        let _ = self.changes.send(change);
                    }
                }
                // The connection was lost (sqlx re-opens it on the next call).
                Ok(None) => {
                    tracing::warn!("lost the connection that listens for other replicas' changes");
                    let _ = self.changes.send(Change::everything());
                }
                Err(e) => {
                    tracing::warn!(error = %e, "listening for other replicas' changes failed");
                    listener = None;
                }
            }
        }
    }
}

async fn connect(url: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip() {
        let change = Change {
            topic: "api_token".into(),
            key: Some("t|1".into()),
        };
        let payload = change.encode("r1");
        assert_eq!(Change::decode(&payload), Some(("r1", change)));
        let bare = Change {
            topic: "mcp_protection".into(),
            key: None,
        };
        assert_eq!(Change::decode(&bare.encode("r2")), Some(("r2", bare)));
        assert!(Change::everything().is("anything"));
    }
}
