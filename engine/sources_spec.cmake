# VM spec (YAML/JSON schema, validation) and the QEMU command line built from it.
set(FERRY_ENGINE_SPEC_SRCS vmspec.c qemu_cmdline.c)
