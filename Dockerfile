# A thin image for schedulers that run containers: the runtime from the same lock as
# `make`, then the `clv` CLI as entrypoint; data and output are volumes. The output
# folder is replaced as a whole at the end of a run, so it is a folder inside the
# volume, never the mount point itself:
#   docker run -v $PWD/in:/data -v $PWD/out:/output -e CLV_DUCKDB_PATH=/data/warehouse.duckdb \
#       clv run --input /data/transactions.csv --output /output/latest
FROM python:3.11-slim

WORKDIR /app
COPY . /app
# The runtime lock only: no test or lint tools in the image.
RUN python3.11 -m venv .venv \
    && .venv/bin/pip install --quiet -r requirements.txt \
    && .venv/bin/pip install --quiet --no-deps -e .

ENV PATH="/app/.venv/bin:${PATH}" \
    CLV_DUCKDB_PATH=/data/warehouse.duckdb
VOLUME ["/data", "/output"]
ENTRYPOINT ["clv"]
CMD ["--help"]
