# The otelspool image: FROM scratch, like the OpenTelemetry Collector's own images.
#
# Build it with scripts/image, not with `docker build .`: no base image can be pulled here, so
# nothing is compiled inside Docker. scripts/image builds the statically linked release binary
# (x86_64-unknown-linux-musl) with cargo and stages this build context:
#   otelspool                      the static binary (no libc, no loader needed)
#   rootfs/etc/passwd, group       the otelspool user, uid/gid 10001 (non-root)
#   rootfs/etc/ssl/certs/ca-certificates.crt   the build machine's CA bundle (Debian's)
#   rootfs/etc/otelspool/config.yaml           deploy/otelspool.yaml
#   queue/                         an empty folder: the queue volume's mount point
#
#   docker run --rm otelspool validate --config=/etc/otelspool/config.yaml
#   docker run -d -v otelspool-queue:/var/lib/otelspool -e DASH0_AUTH_TOKEN=... otelspool
FROM scratch
COPY rootfs/ /
# Owned by the otelspool user, so that a new named volume mounted here starts writable.
COPY --chown=10001:10001 queue/ /var/lib/otelspool/
COPY otelspool /otelspool
USER 10001:10001
# rustls reads the system roots from here (rustls-native-certs); a tls.ca_file adds to them.
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
VOLUME ["/var/lib/otelspool"]
# OTLP/gRPC, OTLP/HTTP, health_check (and /status), self-metrics.
EXPOSE 4317 4318 13133 8888
# /readyz on 127.0.0.1:13133: unhealthy while logs are at risk (docs/operations.md).
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/otelspool", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/otelspool"]
CMD ["--config=/etc/otelspool/config.yaml"]
