//! A list+watch cache of one cluster-wide resource (spec §8.2): list, then watch from the list's
//! resourceVersion, applying events; when a watch ends (the test API server ends it at once)
//! re-list and re-watch quietly with a capped backoff.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use http_body_util::BodyExt as _;
use serde_json::Value;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::client::{KubeClient, KubeError};

/// First and largest pause between two list+watch rounds.
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Objects by `(namespace, name)`.
pub type Objects = HashMap<(String, String), Value>;

/// A read handle on the cache.
#[derive(Clone)]
pub struct Store {
    objects: Arc<RwLock<Objects>>,
    synced: watch::Receiver<bool>,
}

impl Store {
    /// The object `namespace/name`, if cached.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Value> {
        self.objects
            .read()
            .ok()?
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    /// Waits until the first list has been applied; `false` if the cache stopped first.
    pub async fn wait_synced(&self) -> bool {
        let mut synced = self.synced.clone();
        synced.wait_for(|s| *s).await.is_ok()
    }
}

/// Starts caching `path` (a cluster-wide list path) until `shutdown`.
pub fn start(client: KubeClient, path: &'static str, shutdown: CancellationToken) -> Store {
    let objects = Arc::new(RwLock::new(Objects::new()));
    let (tx, synced) = watch::channel(false);
    let store = Store {
        objects: Arc::clone(&objects),
        synced,
    };
    tokio::spawn(async move {
        let mut backoff = BACKOFF_MIN;
        loop {
            let round = async {
                let version = list(&client, path, &objects).await?;
                let _ = tx.send(true);
                watch_once(&client, path, &version, &objects).await
            };
            let events = tokio::select! {
                () = shutdown.cancelled() => return,
                r = round => r,
            };
            match events {
                Ok(0) => backoff = (backoff * 2).min(BACKOFF_MAX),
                Ok(_) => backoff = BACKOFF_MIN,
                Err(error) => {
                    tracing::debug!(%error, path, "list/watch failed");
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
        }
    });
    store
}

async fn list(
    client: &KubeClient,
    path: &str,
    objects: &RwLock<Objects>,
) -> Result<String, KubeError> {
    let list = client.get(path).await?;
    let version = list
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let fresh: Objects = list
        .get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|o| key(o).map(|k| (k, o.clone())))
        .collect();
    if let Ok(mut objects) = objects.write() {
        *objects = fresh;
    }
    Ok(version)
}

/// Watches until the stream ends; the number of events applied.
async fn watch_once(
    client: &KubeClient,
    path: &str,
    version: &str,
    objects: &RwLock<Objects>,
) -> Result<usize, KubeError> {
    let mut url = format!("{path}?watch=true&allowWatchBookmarks=true");
    if !version.is_empty() {
        url.push_str("&resourceVersion=");
        url.push_str(version);
    }
    let mut body = client.stream(&url).await?.into_body();
    let mut buffer = Vec::new();
    let mut applied = 0;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buffer.extend_from_slice(&data);
        while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            if apply(&line, objects) {
                applied += 1;
            }
        }
    }
    if !buffer.is_empty() && apply(&buffer, objects) {
        applied += 1;
    }
    Ok(applied)
}

/// Applies one watch event line; `false` when it is not an object event.
pub fn apply(line: &[u8], objects: &RwLock<Objects>) -> bool {
    let Ok(event) = serde_json::from_slice::<Value>(line) else {
        return false;
    };
    let (Some(kind), Some(object)) = (
        event.get("type").and_then(Value::as_str),
        event.get("object"),
    ) else {
        return false;
    };
    let Some(k) = key(object) else { return false };
    let Ok(mut objects) = objects.write() else {
        return false;
    };
    match kind {
        "ADDED" | "MODIFIED" => {
            objects.insert(k, object.clone());
            true
        }
        "DELETED" => {
            objects.remove(&k);
            true
        }
        _ => false,
    }
}

fn key(object: &Value) -> Option<(String, String)> {
    let meta = object.get("metadata")?;
    Some((
        meta.get("namespace")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        meta.get("name")?.as_str()?.to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_events_add_modify_and_delete_objects() {
        let objects = RwLock::new(Objects::new());
        let pod =
            r#"{"type":"ADDED","object":{"metadata":{"namespace":"ns","name":"p"},"spec":{}}}"#;
        assert!(apply(pod.as_bytes(), &objects));
        assert!(
            objects
                .read()
                .unwrap()
                .contains_key(&("ns".into(), "p".into()))
        );
        assert!(!apply(br#"{"kind":"PodList","items":[]}"#, &objects));
        assert!(!apply(
            br#"{"type":"BOOKMARK","object":{"metadata":{"name":"x"}}}"#,
            &objects
        ));
        let del = r#"{"type":"DELETED","object":{"metadata":{"namespace":"ns","name":"p"}}}"#;
        assert!(apply(del.as_bytes(), &objects));
        assert!(objects.read().unwrap().is_empty());
    }
}
