//! Change events behind `subscriptions/listen` (2026-07-28): a list changed, or a resource was
//! updated. One broadcast channel per process; each open listen stream takes what its filter
//! accepted (rmcp's `SubscriptionSink` drops the rest and tags each notification with the
//! subscription id).

use rmcp::model::{
    CustomNotification, PromptListChangedNotification, ResourceListChangedNotification,
    ResourceUpdatedNotification, ResourceUpdatedNotificationParam, ServerNotification,
    ToolListChangedNotification,
};
use tokio::sync::broadcast;

/// Events a slow stream may fall behind by before it is told "everything changed".
const CAPACITY: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum McpEvent {
    ToolsChanged,
    /// One person's tool list changed (their grant of a per-person server arrived or went):
    /// only their streams are told.
    ToolsChangedFor(String),
    /// A person's grant arrived from a "connect your account" link: the URL elicitation with
    /// this id is complete (2025-11-25 `notifications/elicitation/complete`; the 2026-07-28
    /// revision has no such notification, its clients retry instead).
    ElicitationComplete {
        person: String,
        id: String,
    },
    PromptsChanged,
    ResourcesChanged,
    ResourceUpdated(String),
    /// An upstream's resource (its relayed URI) was updated; with `person`, in that person's
    /// session with the upstream.
    UpstreamResourceUpdated {
        person: Option<String>,
        uri: String,
    },
}

impl McpEvent {
    /// Whether a stream of `person`'s should hear of it.
    pub fn is_for(&self, person: Option<&str>) -> bool {
        match self {
            McpEvent::ToolsChangedFor(p) | McpEvent::ElicitationComplete { person: p, .. } => {
                person == Some(p.as_str())
            }
            McpEvent::UpstreamResourceUpdated {
                person: Some(p), ..
            } => person == Some(p.as_str()),
            _ => true,
        }
    }

    pub fn notification(&self) -> ServerNotification {
        match self {
            McpEvent::ToolsChanged | McpEvent::ToolsChangedFor(_) => {
                ServerNotification::ToolListChangedNotification(
                    ToolListChangedNotification::default(),
                )
            }
            McpEvent::ElicitationComplete { id, .. } => {
                ServerNotification::CustomNotification(CustomNotification::new(
                    "notifications/elicitation/complete",
                    Some(serde_json::json!({"elicitationId": id})),
                ))
            }
            McpEvent::PromptsChanged => ServerNotification::PromptListChangedNotification(
                PromptListChangedNotification::default(),
            ),
            McpEvent::ResourcesChanged => ServerNotification::ResourceListChangedNotification(
                ResourceListChangedNotification::default(),
            ),
            McpEvent::ResourceUpdated(uri) | McpEvent::UpstreamResourceUpdated { uri, .. } => {
                ServerNotification::ResourceUpdatedNotification(ResourceUpdatedNotification::new(
                    ResourceUpdatedNotificationParam::new(uri.clone()),
                ))
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct McpEvents(broadcast::Sender<McpEvent>);

impl Default for McpEvents {
    fn default() -> Self {
        McpEvents(broadcast::channel(CAPACITY).0)
    }
}

impl McpEvents {
    /// Tells every open listen stream; nobody listening is fine.
    pub fn send(&self, event: McpEvent) {
        let _ = self.0.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<McpEvent> {
        self.0.subscribe()
    }
}
