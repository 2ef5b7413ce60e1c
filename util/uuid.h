/* Random (version 4) UUIDs: VM identities and migration UIDs. */
#ifndef FERRY_UTIL_UUID_H
#define FERRY_UTIL_UUID_H

/* Fills out with a lowercase canonical UUID. 0 or -errno (getrandom). */
int uuid_v4(char out[37]);

/* 1 when s is a canonical UUID (8-4-4-4-12 hex digits, either case), else
 * 0. Ids that arrive from peers or clients name files and appear in log
 * lines, so nothing else is accepted as a migration id. Pure. */
int uuid_valid(const char *s);

#endif
