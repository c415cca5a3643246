//! A loopback listener that hands each connection to a new process as its standard input and
//! output, as inetd does: for servers that can serve one connection that way (`git daemon
//! --inetd`, `sshd -i`) but cannot bind port 0 and say which port they got. The port is ours,
//! bound once and kept, so no other process can take it between a test finding it and the server
//! binding it.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Stops accepting, and kills what it started, when dropped.
pub(crate) struct Inetd {
    address: SocketAddr,
    stopping: Arc<AtomicBool>,
    children: Arc<Mutex<Vec<Child>>>,
    acceptor: Option<std::thread::JoinHandle<()>>,
}

impl Inetd {
    /// Listens on a port of 127.0.0.1 the kernel picks and runs `command()` for each connection,
    /// with the connection as its standard input and output (standard error as `command` set
    /// it).
    pub(crate) fn start(command: impl Fn() -> Command + Send + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let address = listener.local_addr().expect("the bound address");
        let stopping = Arc::new(AtomicBool::new(false));
        let children = Arc::new(Mutex::new(Vec::<Child>::new()));
        let acceptor = std::thread::spawn({
            let (stopping, children) = (Arc::clone(&stopping), Arc::clone(&children));
            move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::Acquire) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let child = connect(&mut command(), stream);
                    let mut children = children.lock().expect("children");
                    // Reap the ones whose connection is over.
                    children.retain_mut(|child| matches!(child.try_wait(), Ok(None)));
                    children.push(child);
                }
            }
        });
        Self {
            address,
            stopping,
            children,
            acceptor: Some(acceptor),
        }
    }

    pub(crate) fn port(&self) -> u16 {
        self.address.port()
    }
}

fn connect(command: &mut Command, stream: TcpStream) -> Child {
    let input = stream.try_clone().expect("duplicate the connection");
    command
        .stdin(Stdio::from(OwnedFd::from(input)))
        .stdout(Stdio::from(OwnedFd::from(stream)))
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {} ({err})", command.get_program().display()))
}

impl Drop for Inetd {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::Release);
        // Wakes the acceptor, which then sees it is stopping.
        let _ = TcpStream::connect(self.address);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let mut children = self
            .children
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for child in children.iter_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
