//! A fast upstream for `bench/gateway.sh` and for trying the examples: answers every
//! request with `200 OK` and a short body after reading the request body, on HTTP/1.1
//! with keep-alive. `cargo run --release -p haetae-gateway --example bench-backend -- 127.0.0.1:9000`

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};

async fn answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let notice = req.uri().path() == "/notice";
    // Read (and drop) the body so keep-alive connections stay usable.
    let mut body = req.into_body();
    while let Some(Ok(_)) = body.frame().await {}
    let text: &'static [u8] = if notice {
        b"notice: this transaction is restricted\n"
    } else {
        b"hello from the bench backend\n"
    };
    Ok(Response::new(Full::new(Bytes::from_static(text))))
}

fn main() -> std::io::Result<()> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9000".into())
        .parse()
        .map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("address: {e}"))
        })?;
    let threads = std::env::var("BACKEND_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        eprintln!("bench-backend listening on http://{addr}");
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service_fn(answer))
                    .await;
            });
        }
    })
}
