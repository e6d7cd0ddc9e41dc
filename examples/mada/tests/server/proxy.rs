//! A TCP balancer on loopback standing in for a Kubernetes Service: each new
//! connection goes to the next ready backend; taking a backend out (as the
//! endpoints controller does when a pod stops being ready) sends new connections
//! elsewhere and leaves the open ones alone.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};

pub struct Proxy {
    pub url: String,
    backends: Arc<Mutex<Vec<SocketAddr>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The address of an `http://host:port` URL.
pub fn address(url: &str) -> SocketAddr {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap()
}

impl Proxy {
    pub async fn start(backends: &[&str]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let backends = Arc::new(Mutex::new(
            backends.iter().map(|b| address(b)).collect::<Vec<_>>(),
        ));
        let task = tokio::spawn({
            let backends = Arc::clone(&backends);
            async move {
                let mut next = 0_usize;
                loop {
                    let Ok((mut client, _)) = listener.accept().await else {
                        continue;
                    };
                    let backend = {
                        let list = backends.lock().unwrap();
                        next = next.wrapping_add(1);
                        list.get(next % list.len().max(1)).copied()
                    };
                    let Some(backend) = backend else { continue };
                    tokio::spawn(async move {
                        if let Ok(mut upstream) = TcpStream::connect(backend).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                        }
                    });
                }
            }
        });
        Self {
            url,
            backends,
            task,
        }
    }

    /// Takes `backend` out: no new connection goes to it.
    pub fn remove(&self, backend: &str) {
        let backend = address(backend);
        self.backends.lock().unwrap().retain(|b| *b != backend);
    }

    /// Puts `backend` in.
    pub fn add(&self, backend: &str) {
        self.backends.lock().unwrap().push(address(backend));
    }
}
