//! OTLP/gRPC: the three generated tonic services, backed by one [`Backend`].
//!
//! Refusals map to `UNAVAILABLE`, `RESOURCE_EXHAUSTED` (with a `google.rpc.RetryInfo` of 1s, as
//! the OTLP specification asks for throttling) and `INVALID_ARGUMENT`. Bodies that do not decode
//! are rejected by tonic-prost's codec with `INTERNAL` and never reach the backend.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

use super::record::{self, Record};
use super::{Backend, Refusal, Transport};

/// Largest request accepted, well above what otelspool sends.
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// The gRPC status a refusal is answered with.
pub fn refusal_status(refusal: Refusal) -> Status {
    match refusal {
        Refusal::Unavailable => Status::unavailable("test backend mode: unavailable"),
        Refusal::ResourceExhausted => Status::with_error_details(
            Code::ResourceExhausted,
            "test backend mode: resource_exhausted",
            ErrorDetails::with_retry_info(Some(Duration::from_secs(1))),
        ),
        Refusal::Invalid => Status::invalid_argument("test backend mode: invalid"),
    }
}

/// Loads a PEM certificate and key into a server TLS config.
pub fn load_tls(cert: &Path, key: &Path) -> anyhow::Result<ServerTlsConfig> {
    let cert = std::fs::read(cert).with_context(|| format!("reading {}", cert.display()))?;
    let key = std::fs::read(key).with_context(|| format!("reading {}", key.display()))?;
    Ok(ServerTlsConfig::new().identity(Identity::from_pem(cert, key)))
}

/// Serves the logs, traces and metrics services on `listener` until the task is dropped.
pub async fn serve(
    backend: Arc<Backend>,
    listener: TcpListener,
    tls: Option<ServerTlsConfig>,
) -> anyhow::Result<()> {
    let mut builder = Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls).context("configuring gRPC TLS")?;
    }
    let svc = Svc(backend);
    builder
        .add_service(
            LogsServiceServer::new(svc.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Zstd)
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(
            TraceServiceServer::new(svc.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Zstd)
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(
            MetricsServiceServer::new(svc)
                .accept_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Zstd)
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
        )
        .serve_with_incoming(TcpIncoming::from(listener).with_nodelay(Some(true)))
        .await
        .context("serving gRPC")
}

#[derive(Clone)]
struct Svc(Arc<Backend>);

impl Svc {
    /// Admits, records, and returns the number of items to report as rejected.
    async fn handle<T>(&self, request: &Request<T>, records: Vec<Record>) -> Result<i64, Status> {
        let headers = request.metadata().clone().into_headers();
        let rejected = self
            .0
            .admit(Transport::Grpc, &headers)
            .await
            .map_err(refusal_status)?;
        self.0.check_ids(&records).map_err(refusal_status)?;
        self.0.accept(records, rejected).await.map_err(|e| {
            tracing::error!(error = %e, "writing the record file failed; answering INTERNAL");
            Status::internal(format!("test backend could not record: {e}"))
        })?;
        Ok(rejected)
    }
}

fn message(rejected: i64) -> String {
    format!("test backend mode: partial:{rejected}")
}

#[tonic::async_trait]
impl LogsService for Svc {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let rejected = self
            .handle(&request, record::from_logs(request.get_ref()))
            .await?;
        Ok(Response::new(ExportLogsServiceResponse {
            partial_success: (rejected > 0).then(|| ExportLogsPartialSuccess {
                rejected_log_records: rejected,
                error_message: message(rejected),
            }),
        }))
    }
}

#[tonic::async_trait]
impl TraceService for Svc {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let rejected = self
            .handle(&request, record::from_traces(request.get_ref()))
            .await?;
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: (rejected > 0).then(|| ExportTracePartialSuccess {
                rejected_spans: rejected,
                error_message: message(rejected),
            }),
        }))
    }
}

#[tonic::async_trait]
impl MetricsService for Svc {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let rejected = self
            .handle(&request, record::from_metrics(request.get_ref()))
            .await?;
        Ok(Response::new(ExportMetricsServiceResponse {
            partial_success: (rejected > 0).then(|| ExportMetricsPartialSuccess {
                rejected_data_points: rejected,
                error_message: message(rejected),
            }),
        }))
    }
}
