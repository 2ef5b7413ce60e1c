/* ferryctl nodes (nodes.c). */
#ifndef FERRY_CLI_NODES_H
#define FERRY_CLI_NODES_H

struct ctl;

/* Prints GET /v1/cluster/nodes: a table (NAME, ADDRESS, REACHABLE,
 * CORDONED, VMS, VERSION, and why a node is unreachable) or, with -o
 * json|yaml, the answer. Returns the exit code. */
int cmd_nodes(struct ctl *c, int argc, char **argv);

#endif
