/* Random (version 4) UUIDs: VM identities and migration UIDs. */
#ifndef FERRY_UTIL_UUID_H
#define FERRY_UTIL_UUID_H

/* Fills out with a lowercase canonical UUID. 0 or -errno (getrandom). */
int uuid_v4(char out[37]);

#endif
