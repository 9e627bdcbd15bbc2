"""Where each field of a span comes from, for every convention Threadline understands.

This table is the single place to teach Threadline a new convention. For each field,
keys are tried in order and the first one present wins; ``docs/conventions.md``
documents the same precedence. Our own ``threadline.*`` keys (``threadline.semconv``)
always come first.
"""

from __future__ import annotations

from threadline import semconv

SESSION_ID = (
    semconv.SESSION_ID,
    "lmnr.association.properties.session_id",
    "session.id",  # OpenInference
    "gen_ai.conversation.id",  # OpenTelemetry GenAI
    "traceloop.association.properties.session_id",
    "langfuse.session.id",
)

USER_ID = (
    semconv.USER_ID,
    "lmnr.association.properties.user_id",
    "user.id",
    "traceloop.association.properties.user_id",
    "langfuse.user.id",
)

# Metadata: one attribute per key under these prefixes ...
METADATA_PREFIXES = (
    semconv.METADATA_PREFIX,
    "lmnr.association.properties.metadata.",
    "langfuse.trace.metadata.",
    # OpenLLMetry: every association property but the session and user ids above.
    "traceloop.association.properties.",
)
# ... or one attribute holding a JSON object.
METADATA_JSON = ("metadata", "langfuse.trace.metadata")
# Prefixes whose values are JSON text (Langfuse serialises every metadata value, so a
# string "pro" arrives as '"pro"'): parsed, and kept as sent if they are not JSON.
METADATA_JSON_VALUE_PREFIXES = ("langfuse.trace.metadata.",)

TAGS = (
    semconv.TAGS,
    "lmnr.association.properties.tags",
    "tag.tags",  # OpenInference
    "langfuse.trace.tags",
)

# Span type: the key, and how its values map onto Threadline's span types
# (None: the value is used as it is, upper-cased).
SPAN_TYPE: tuple[tuple[str, dict[str, str] | None], ...] = (
    (semconv.SPAN_TYPE, None),
    ("lmnr.span.type", None),
    ("openinference.span.kind", {"LLM": "LLM", "EMBEDDING": "LLM", "TOOL": "TOOL"}),
    (
        "langfuse.observation.type",
        {
            "GENERATION": "LLM",
            "EMBEDDING": "LLM",
            "TOOL": "TOOL",
            "EVALUATOR": "EVALUATOR",
        },
    ),
    ("traceloop.span.kind", {"TOOL": "TOOL"}),
    (
        "gen_ai.operation.name",
        {
            "CHAT": "LLM",
            "TEXT_COMPLETION": "LLM",
            "GENERATE_CONTENT": "LLM",
            "EMBEDDINGS": "LLM",
            "EXECUTE_TOOL": "TOOL",
        },
    ),
)

# Input and output. Chat messages come first: a span that carries them under any
# convention has them as its input or output, in the one shape of ``messages``. Each
# convention sends them either as one attribute holding a JSON list ...
INPUT_MESSAGES = ("gen_ai.input.messages",)
OUTPUT_MESSAGES = ("gen_ai.output.messages",)
# ... (with the GenAI system prompt beside them, put first as a system message) ...
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
# ... or flattened into indexed attributes: `<prefix><N>.<field>` (OpenLLMetry), and
# `<prefix><N>.message.<field>` (OpenInference).
INPUT_MESSAGE_PREFIXES = ("gen_ai.prompt.", "llm.input_messages.")
OUTPUT_MESSAGE_PREFIXES = ("gen_ai.completion.", "llm.output_messages.")
# OpenLLMetry's indexed messages without a role, read only when nothing above gave the
# span an input (output): ``<N>.user`` holds a user's prompt (its Replicate, Haystack,
# Vertex AI and watsonx instrumentations), a lone ``<N>.content`` is the prompt's on
# input and a completion's on output.
INPUT_ROLE_KEY = "user"
INPUT_DEFAULT_ROLE = "user"
OUTPUT_DEFAULT_ROLE = "assistant"
# Without chat messages: attributes holding the whole payload (JSON or text). A payload
# that is itself a message list (or one message) is put in the same shape.
INPUT = (
    semconv.SPAN_INPUT,
    "lmnr.span.input",
    "input.value",  # OpenInference
    "langfuse.observation.input",
    "traceloop.entity.input",
    "gen_ai.prompt",  # OpenTelemetry GenAI before 1.28 (deprecated): the whole prompt
)
OUTPUT = (
    semconv.SPAN_OUTPUT,
    "lmnr.span.output",
    "output.value",
    "langfuse.observation.output",
    "traceloop.entity.output",
    "gen_ai.completion",
)
# ... or, in those older GenAI conventions, on a span event: (event name, attribute),
# read when no attribute gave the span an input (output).
INPUT_EVENT = ("gen_ai.content.prompt", "gen_ai.prompt")
OUTPUT_EVENT = ("gen_ai.content.completion", "gen_ai.completion")

MODEL = (
    "gen_ai.response.model",
    "gen_ai.request.model",
    "llm.model_name",
    "langfuse.observation.model.name",
)
PROVIDER = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")

INPUT_TOKENS = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "llm.token_count.prompt",
)
OUTPUT_TOKENS = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
)
TOTAL_TOKENS = ("gen_ai.usage.total_tokens", "llm.usage.total_tokens", "llm.token_count.total")
CACHE_READ_TOKENS = (
    "gen_ai.usage.cache_read_input_tokens",
    "gen_ai.usage.cache_read.input_tokens",
    "llm.token_count.prompt_details.cache_read",
)
CACHE_WRITE_TOKENS = (
    "gen_ai.usage.cache_creation_input_tokens",
    "gen_ai.usage.cache_creation.input_tokens",
    "llm.token_count.prompt_details.cache_write",
)

# Cost sent by the client wins over the price table.
COST = ("gen_ai.usage.cost",)
INPUT_COST = ("gen_ai.usage.input_cost",)
OUTPUT_COST = ("gen_ai.usage.output_cost",)

# Usage and cost sent as one JSON object (Langfuse's ``usage_details``, which holds its
# own ``input``/``output``/``total`` or OpenAI's ``prompt_tokens``..., and
# ``cost_details``): read only for the fields no key above gave, the object's keys
# tried in order.
USAGE_OBJECTS: tuple[tuple[str, dict[str, tuple[str, ...]]], ...] = (
    (
        "langfuse.observation.usage_details",
        {
            "input_tokens": ("input", "prompt_tokens", "input_tokens"),
            "output_tokens": ("output", "completion_tokens", "output_tokens"),
            "total_tokens": ("total", "total_tokens"),
            "cache_read_tokens": (
                "input_cache_read",
                "cache_read_input_tokens",
                "input_cached_tokens",
            ),
            "cache_write_tokens": ("input_cache_creation", "cache_creation_input_tokens"),
        },
    ),
    (
        "langfuse.observation.cost_details",
        {
            "cost": ("total",),
            "input_cost": ("input",),
            "output_cost": ("output",),
        },
    ),
)

# When no key above gives a span's type, a model or a token count marks an LLM call.
