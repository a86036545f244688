# A thin image for schedulers that run containers. The same install target as
# `make`, then the `clv` CLI as entrypoint; data and output are volumes. The output
# folder is replaced as a whole at the end of a run, so it is a folder inside the
# volume, never the mount point itself:
#   docker run -v $PWD/in:/data -v $PWD/out:/output -e CLV_DUCKDB_PATH=/data/warehouse.duckdb \
#       clv run --input /data/transactions.csv --output /output/latest
FROM python:3.11-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY . /app
RUN make install PYTHON=python3.11

ENV PATH="/app/.venv/bin:${PATH}" \
    CLV_DUCKDB_PATH=/data/warehouse.duckdb
VOLUME ["/data", "/output"]
ENTRYPOINT ["clv"]
CMD ["--help"]
