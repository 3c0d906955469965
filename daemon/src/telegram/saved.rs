//! What the channel keeps across restarts: the messages it sent and their
//! live buttons, so a restarted daemon edits them instead of sending again.

use std::collections::{BTreeMap, HashMap};

use latch_proto::msg::PendingItem;
use teloxide::types::MessageId;

use super::text::{self, Action};
use super::{Channel, Edit, Entry, NAME};

/// What is saved across restarts (see "Restarts" above).
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Saved {
    /// The bot (the id part of its token, not secret), its API and chat:
    /// messages of another bot or chat are not this channel's to edit.
    bot: String,
    api: String,
    chat: i64,
    /// Approval id → its message.
    messages: BTreeMap<String, SavedMessage>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct SavedMessage {
    message: i32,
    text: String,
    /// Live button value → [`Action::key`].
    buttons: BTreeMap<String, String>,
}

impl Channel {
    /// Saves the messages sent and their live buttons.
    pub(super) async fn save(&mut self) {
        let mut saved =
            Saved { bot: self.bot_id(), api: self.api_label(), chat: self.chat.0, messages: BTreeMap::new() };
        for (id, entry) in &self.entries {
            if let Some((message, text)) = &entry.sent {
                let buttons = self
                    .buttons
                    .iter()
                    .filter(|(_, (a, _))| a == id)
                    .map(|(v, (_, action))| (v.clone(), action.key().to_owned()))
                    .collect();
                saved.messages.insert(id.clone(), SavedMessage { message: message.0, text: text.clone(), buttons });
            }
        }
        match serde_json::to_string(&saved) {
            Ok(json) => self.hub.save_state(NAME, json).await,
            Err(e) => tracing::warn!("telegram: cannot save its messages: {e}"),
        }
    }

    /// Takes back what the last run with this bot and chat saved: the
    /// buttons of approvals still pending keep working, and the messages of
    /// approvals that closed meanwhile are edited to say so.
    pub(super) async fn restore(&mut self) {
        let Some(json) = self.hub.load_state(NAME).await else { return };
        let saved: Saved = match serde_json::from_str(&json) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("telegram: ignoring what it saved before a restart ({e})");
                return;
            }
        };
        if (saved.bot.as_str(), saved.api.as_str(), saved.chat)
            != (self.bot_id().as_str(), self.api_label().as_str(), self.chat.0)
        {
            return;
        }
        let pending: HashMap<String, PendingItem> = self.hub.pending().into_iter().map(|p| (p.id.clone(), p)).collect();
        for (id, m) in saved.messages {
            let message = MessageId(m.message);
            let Some(item) = pending.get(&id) else {
                let text =
                    text::closed_message(&m.text, "closed", "answered or withdrawn while this bot was not running");
                self.edits.push(Edit { message, text, attempts: 0 });
                continue;
            };
            // Still pending: its message and buttons are taken back, so it
            // is not sent again (sending waited for this).
            let entry = self.entries.entry(id.clone()).or_insert_with(|| Entry { item: item.clone(), sent: None });
            entry.sent = Some((message, m.text));
            for (value, key) in m.buttons {
                if let Some(action) = Action::from_key(&key) {
                    self.buttons.insert(value, (id.clone(), action));
                }
            }
        }
        self.save().await;
    }
}
