# The horde server image (API nodes and the scheduler). UNEXERCISED: no container engine exists on the
# machines this project is developed and tested on, so this file has never been built; see README,
# "Operating several nodes".
FROM python:3.12-slim AS build
COPY --from=ghcr.io/astral-sh/uv:0.9 /uv /usr/local/bin/uv
WORKDIR /app
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
# dependencies first (cached while only the code changes); the server extra only: no model backends
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-default-groups --extra server --no-install-project
COPY src ./src
COPY migrations ./src/horde/_migrations
RUN uv sync --frozen --no-dev --no-default-groups --extra server --no-editable

FROM python:3.12-slim
RUN useradd --create-home --uid 10001 horde
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    HORDE_HOST=0.0.0.0 \
    HORDE_PORT=7001 \
    HORDE_DATA_DIR=/var/lib/horde
RUN mkdir -p /var/lib/horde && chown horde /var/lib/horde
USER horde
EXPOSE 7001
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:7001/api/v2/status/heartbeat', timeout=2)"
CMD ["horde", "serve"]
