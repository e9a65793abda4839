"""Status and discovery endpoints: heartbeat, models, performance, modes, news, service info."""
