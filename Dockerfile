# The synthgate image used by docker-compose.yml (web, worker and migrations share it).
FROM python:3.11-slim
WORKDIR /app
# CPU-only torch first, so the project's pin (torch==2.13.0) is already satisfied
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
COPY . /app
# the project's modules compiled here: /app belongs to root, so the synthgate user could not write
# their .pyc files and every process would compile them from source at start
RUN pip install --no-cache-dir -e . \
 && python -m compileall -q core privacy evaluation workers webapp bench synthgate_client \
 && useradd --create-home synthgate \
 && mkdir -p /var/lib/synthgate && chown synthgate /var/lib/synthgate
USER synthgate
EXPOSE 8000
