"""The reference horde's typed limits and fixed values, shared by the server, the worker and the client.

Numbers come from SEMANTICS.md §8 ("Hard limits"), §1 and the swagger. The contract models use the
ones that are schema-level; the rest (checked by the server with an rc) are here so that clients can
refuse early with the same numbers.
"""

from typing import Final

ANON_API_KEY: Final = "0000000000"
DEFAULT_CLIENT_AGENT: Final = "unknown:0:unknown"
DEFAULT_BRIDGE_AGENT: Final = "unknown:0:unknown"

# Image requests
MAX_N: Final = 20
MIN_SIDE: Final = 64
MAX_SIDE: Final = 3072
SIDE_MULTIPLE: Final = 64
DEFAULT_SIDE: Final = 512
MAX_STEPS: Final = 500
DEFAULT_STEPS: Final = 30
DEFAULT_CONTROLNET_STEPS: Final = 20
MAX_CONTROLNET_STEPS: Final = 40
MAX_CFG_SCALE: Final = 100
MAX_CFG_DECIMALS: Final = 2
MAX_CLIP_SKIP: Final = 12
MAX_SEED_VARIATION: Final = 1000
MAX_LORAS: Final = 5
MAX_LORA_STRENGTH: Final = 5.0
MAX_TIS: Final = 20
MAX_UPSCALERS: Final = 1
MAX_EXTRA_SOURCE_IMAGES: Final = 5
MAX_SOURCE_SIDE: Final = 3072
MAX_SOURCE_BYTES: Final = 5 * 1024 * 1024
MAX_PROMPT_WORDS: Final = 7500
MAX_PROMPT_BYTES: Final = 32 * 1024  # UTF-8; the words cap alone lets one 20 MB word through
MAX_TARGET_WORKERS: Final = 5  # only the first 5 of `workers` are kept
MAX_GEN_METADATA: Final = 50

# Text requests
MIN_TEXT_LENGTH: Final = 16
MAX_TEXT_LENGTH: Final = 4096
DEFAULT_TEXT_LENGTH: Final = 80
MIN_CONTEXT_LENGTH: Final = 80
MAX_CONTEXT_LENGTH: Final = 1_048_576
MAX_TEXT_PROMPT_BYTES: Final = 4 * 1024 * 1024  # UTF-8, above the largest context accepted
DEFAULT_CONTEXT_LENGTH: Final = 2048
MAX_STOP_SEQUENCES: Final = 128
MAX_STOP_SEQUENCE_CHARS: Final = 2000
MIN_SAMPLER_ORDER: Final = 7

# Interrogation
MAX_INTERROGATION_TILES: Final = 255
TILE_SIDE: Final = 512

MAX_INT32: Final = 2**31 - 1  # the largest value an INTEGER column holds

# Workers and pop
MAX_POP_AMOUNT: Final = 20
MAX_THREADS: Final = 50
MAX_ALCHEMY_THREADS: Final = 100
MAX_TILES: Final = 256
DEFAULT_MAX_TILES: Final = 80
DEFAULT_MAX_PIXELS: Final = 262_144
DEFAULT_WORKER_MAX_LENGTH: Final = 512
DEFAULT_WORKER_MAX_CONTEXT_LENGTH: Final = 2048
MAX_BRIDGE_AGENT_CHARS: Final = 1000
MAX_WORKER_BLACKLIST: Final = 200
MIN_TEAM_NAME_CHARS: Final = 3
MAX_TEAM_NAME_CHARS: Final = 100
MIN_TEAM_INFO_CHARS: Final = 3
MAX_TEAM_INFO_CHARS: Final = 1000
MIN_WORKER_NAME_CHARS: Final = 5
MAX_WORKER_NAME_CHARS: Final = 100
MAX_WORKER_INFO_CHARS: Final = 1000
MAX_MAINTENANCE_MSG_CHARS: Final = 300
WORKER_ONLINE_SECONDS: Final = 300
MAX_MESSAGE_CHARS: Final = 10_240
MESSAGES_PER_PAGE: Final = 50
MAX_MESSAGE_EXPIRY_HOURS: Final = 720
DEFAULT_MESSAGE_EXPIRY_HOURS: Final = 12

# Users
DEFAULT_CONCURRENCY: Final = 30
MAX_CONCURRENCY: Final = 500
MIN_USAGE_MULTIPLIER: Final = 0.1
MAX_USAGE_MULTIPLIER: Final = 10
MAX_USERNAME_CHARS: Final = 30
USERS_PAGE_SIZE: Final = 25
MAX_USERS_PAGE: Final = 10_000

# Requests in general
MIN_WEBHOOK_CHARS: Final = 10
MAX_WEBHOOK_CHARS: Final = 1024
MIN_STYLE_CHARS: Final = 3
MAX_STYLE_CHARS: Final = 1024

# Styles and collections (SEMANTICS.md 1.9, 8)
MAX_STYLE_NAME_CHARS: Final = 100
MAX_STYLE_TAG_CHARS: Final = 25
MAX_STYLE_TAGS: Final = 10
MIN_STYLE_MODELS: Final = 1
MAX_STYLE_MODELS: Final = 5
MAX_STYLE_EXAMPLES: Final = 4
MAX_STYLE_EXAMPLE_URL_CHARS: Final = 1024
STYLES_PAGE_SIZE: Final = 25
MAX_STYLES_PAGE: Final = 10_000
MAX_COLLECTION_STYLES: Final = 100  # this horde's bound (the reference has none): each is looked up
