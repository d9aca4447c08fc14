# The exporter's image, built like node_exporter's: `make docker-binary` (or promu) first leaves the
# static binary in .build/<os>-<arch>/, then `docker build -t sls-keyword-exporter .`; see docs/deploy.md.
ARG ARCH="amd64"
ARG OS="linux"
FROM quay.io/prometheus/busybox-${OS}-${ARCH}:latest
LABEL maintainer="The sls_keyword_exporter authors"
LABEL org.opencontainers.image.authors="The sls_keyword_exporter authors" \
      org.opencontainers.image.title="sls_keyword_exporter" \
      org.opencontainers.image.description="Prometheus exporter counting regex matches in Alibaba Cloud Log Service logstores, read through consumer groups" \
      org.opencontainers.image.source="https://github.com/sls-keyword-exporter/sls_keyword_exporter" \
      org.opencontainers.image.url="https://github.com/sls-keyword-exporter/sls_keyword_exporter" \
      org.opencontainers.image.documentation="https://github.com/sls-keyword-exporter/sls_keyword_exporter/blob/main/docs/deploy.md" \
      org.opencontainers.image.licenses="Apache-2.0" \
      io.prometheus.image.variant="busybox"

# ARGs declared before FROM are not visible after it.
ARG ARCH="amd64"
ARG OS="linux"
COPY .build/${OS}-${ARCH}/sls_keyword_exporter /bin/sls_keyword_exporter

EXPOSE      10290
USER        nobody
ENTRYPOINT  [ "/bin/sls_keyword_exporter" ]
