set(FERRY_TRANSPORT_LOWLEVEL_SRCS frame.c crc32c.c codec.c auth.c)
