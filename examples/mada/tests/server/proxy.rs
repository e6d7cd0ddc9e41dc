//! A TCP balancer on loopback standing in for a Kubernetes Service: each new
//! connection goes to the next ready backend; taking a backend out (as the
//! endpoints controller does when a pod stops being ready) sends new connections
//! elsewhere and leaves the open ones alone. It can also cut the network: every
//! open connection reset, new ones refused, until it is restored.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};

pub struct Proxy {
    pub url: String,
    backends: Arc<Mutex<Vec<SocketAddr>>>,
    /// `true` while the network is cut.
    cut: tokio::sync::watch::Sender<bool>,
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
        let (cut, watching) = tokio::sync::watch::channel(false);
        let task = tokio::spawn({
            let backends = Arc::clone(&backends);
            async move {
                let mut next = 0_usize;
                loop {
                    let Ok((mut client, _)) = listener.accept().await else {
                        continue;
                    };
                    if *watching.borrow() {
                        continue; // dropped: refused
                    }
                    let backend = {
                        let list = backends.lock().unwrap();
                        next = next.wrapping_add(1);
                        list.get(next % list.len().max(1)).copied()
                    };
                    let Some(backend) = backend else { continue };
                    let mut cut = watching.clone();
                    tokio::spawn(async move {
                        if let Ok(mut upstream) = TcpStream::connect(backend).await {
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
                                _ = cut.wait_for(|cut| *cut) => {}
                            }
                        }
                    });
                }
            }
        });
        Self {
            url,
            backends,
            cut,
            task,
        }
    }

    /// Cuts the network: open connections are dropped, new ones refused.
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Restores the network.
    pub fn restore(&self) {
        self.cut.send_replace(false);
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
