# ferryd's YAML configuration file.
set(FERRY_AGENT_CONFIG_SRCS config.c)
