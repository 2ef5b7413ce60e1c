/* ferryctl cordon, uncordon and drain (cli/drain.c). */
#ifndef FERRY_CLI_DRAIN_H
#define FERRY_CLI_DRAIN_H

struct ctl;

#define CORDON_HELP "cordon NODE         (no new VMs or inbound migrations on NODE)"
#define UNCORDON_HELP "uncordon NODE       (NODE takes VMs again)"
#define DRAIN_HELP "drain NODE [--wait] [--max-attempts N] [--timeout S] [--interrupt]  (move every VM off NODE)"

/* argv is what follows the command's name. Exit status: 0, 1 (failed or,
 * for drain --wait, some VM did not move), 2 (usage). */
int cmd_cordon(struct ctl *c, int argc, char **argv);
int cmd_uncordon(struct ctl *c, int argc, char **argv);
int cmd_drain(struct ctl *c, int argc, char **argv);

#endif
