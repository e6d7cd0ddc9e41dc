//! Applying a batch of events to the documents of a projection.

use std::collections::{HashMap, HashSet};

use crate::error::Error;
use crate::event::{Envelope, Position, RecordedEvent};
use crate::ports::{DocumentChange, ReadModelReader};

use super::Projection;

struct Working<D> {
    document: Option<D>,
    position: Position,
    dirty: bool,
}

/// Applies `batch` to the documents of `projection` stored under `name`, and returns
/// the changes to commit. An event is applied to a document only if the document's
/// stored position is before the event's (the guard that makes replays no-ops).
pub(crate) async fn apply_batch<P, S>(
    projection: &P,
    store: &S,
    name: &str,
    batch: &[RecordedEvent],
) -> Result<Vec<DocumentChange>, Error>
where
    P: Projection,
    S: ReadModelReader + ?Sized,
{
    let mut routed: Vec<(Envelope<P::Event>, Vec<String>)> = Vec::new();
    let mut order: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for recorded in batch {
        let Some(event) = recorded.decode_if::<P::Event>()? else {
            continue;
        };
        let ids = projection.document_ids(&event);
        for id in &ids {
            if seen.insert(id.clone()) {
                order.push(id.clone());
            }
        }
        routed.push((event, ids));
    }
    if order.is_empty() {
        return Ok(Vec::new());
    }

    let stored = store.get_many(name, &order).await?;
    let mut working: HashMap<String, Working<P::Document>> = HashMap::with_capacity(order.len());
    for (id, doc) in stored {
        let document = if doc.value.is_null() {
            None
        } else {
            Some(serde_json::from_value(doc.value).map_err(|e| Error::codec(name, e))?)
        };
        working.insert(
            id,
            Working {
                document,
                position: doc.position,
                dirty: false,
            },
        );
    }

    for (event, ids) in &routed {
        for id in ids {
            let entry = working.entry(id.clone()).or_insert(Working {
                document: None,
                position: Position::START,
                dirty: false,
            });
            if entry.position >= event.position {
                continue;
            }
            projection.apply(id, &mut entry.document, event);
            entry.position = event.position;
            entry.dirty = true;
        }
    }

    let mut changes = Vec::with_capacity(order.len());
    for id in order {
        let Some(entry) = working.remove(&id) else {
            continue;
        };
        if !entry.dirty {
            continue;
        }
        changes.push(match entry.document {
            Some(document) => DocumentChange::Put {
                value: serde_json::to_value(&document).map_err(|e| Error::codec(name, e))?,
                id,
                position: entry.position,
            },
            None => DocumentChange::Delete {
                id,
                position: entry.position,
            },
        });
    }
    Ok(changes)
}
