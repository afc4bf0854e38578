"""llmbridge: a native LLM client and JSON text tools for Python extraction workers."""

from __future__ import annotations

try:
    # Imported first, only to fail early with the note below.
    from . import _native  # pyright: ignore[reportUnusedImport]
except ImportError as exc:  # pragma: no cover - only when the build is missing
    raise ImportError(
        "llmbridge's native extension (llmbridge._native) could not be imported. "
        "Install the package with pip (it builds the C++ core), e.g. "
        "`bash scripts/setup.sh` or `pip install .` from a source checkout; see README.md."
    ) from exc

from ._batch import BatchResults, SyncBatchResults
from ._client import ExtractionAttempt, OllamaClient, OpenAICompatibleClient, VLLMClient
from ._env import AppConfig, load_config
from ._factory import (
    ClientHolder,
    ProviderSpec,
    build_config_from_resolved,
    build_embedding_client,
    build_llm_client,
    build_llm_client_checked,
    build_llm_client_checked_sync,
    register_provider,
    registered_providers,
    unregister_provider,
)
from ._generate import (
    AsyncEventStream,
    ChatResult,
    EmbeddingResult,
    ModelInfo,
    ReasoningToken,
    StreamEnd,
    StreamError,
    StreamEvent,
    StreamMetrics,
    StreamStarted,
    SyncEventStream,
    Token,
    ToolCall,
    ToolCallDelta,
    TryRecord,
)
from ._health import (
    HealthReport,
    check_ollama_health,
    check_ollama_health_sync,
    check_vllm_health,
    check_vllm_health_sync,
    health,
    health_sync,
)
from ._image import MAX_IMAGE_BYTES, Image
from ._native import StatsSnapshot
from ._replicas import ReplicaStats
from ._text import (
    CompiledSchema,
    Repair,
    RepairReport,
    check_schema,
    compile_schema,
    is_valid_json,
    loads,
    repair_json,
    repair_report,
    strip_markdown_fences,
    validate,
)
from . import _tracing
from ._tracing import instrument, is_instrumented, uninstrument
from .config import OllamaConfig, OpenAIConfig, VLLMConfig
from .errors import ConfigError, JSONRepairError, LLMBridgeError, LLMCallError

__version__ = "0.1.0"

__all__ = [
    "AsyncEventStream",
    "BatchResults",
    "SyncBatchResults",
    "ChatResult",
    "EmbeddingResult",
    "Image",
    "MAX_IMAGE_BYTES",
    "build_embedding_client",
    "LLMCallError",
    "ModelInfo",
    "ReasoningToken",
    "StreamEnd",
    "StreamError",
    "StreamEvent",
    "StreamMetrics",
    "StreamStarted",
    "SyncEventStream",
    "Token",
    "ToolCall",
    "ToolCallDelta",
    "TryRecord",
    "instrument",
    "is_instrumented",
    "uninstrument",
    "AppConfig",
    "ClientHolder",
    "HealthReport",
    "ReplicaStats",
    "StatsSnapshot",
    "ProviderSpec",
    "build_config_from_resolved",
    "build_llm_client",
    "build_llm_client_checked",
    "build_llm_client_checked_sync",
    "check_ollama_health",
    "check_ollama_health_sync",
    "check_vllm_health",
    "check_vllm_health_sync",
    "health",
    "health_sync",
    "load_config",
    "register_provider",
    "registered_providers",
    "unregister_provider",
    "ConfigError",
    "ExtractionAttempt",
    "OllamaClient",
    "OllamaConfig",
    "OpenAICompatibleClient",
    "OpenAIConfig",
    "VLLMClient",
    "VLLMConfig",
    "JSONRepairError",
    "LLMBridgeError",
    "Repair",
    "RepairReport",
    "__version__",
    "CompiledSchema",
    "check_schema",
    "compile_schema",
    "is_valid_json",
    "loads",
    "repair_json",
    "repair_report",
    "strip_markdown_fences",
    "validate",
]

# LLMBRIDGE_OTEL=1: trace from the start (docs/observability.md, "Tracing").
_tracing.instrument_from_env()
