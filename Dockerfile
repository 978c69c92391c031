# Cablehub in a container: a static binary on a minimal image, run as a
# non-root user. Build: docker build -t cablehub .
# Run:   docker run -p 8080:8080 cablehub --public
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=0.1.0
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/cablehub/cablehub/server/runner.Version=${VERSION}" -o /cablehub ./cmd/cablehub

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /cablehub /usr/local/bin/cablehub
EXPOSE 8080
# Listen on every interface inside the container; flags and ANYCABLE_*
# variables work as outside it.
ENV ANYCABLE_HOST=0.0.0.0
USER nonroot:nonroot
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["/usr/local/bin/cablehub", "--healthcheck"]
ENTRYPOINT ["/usr/local/bin/cablehub"]
