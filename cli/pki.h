/* ferryctl pki: the cluster CA and node certificates (transport/pki.h). */
#ifndef FERRY_CLI_PKI_H
#define FERRY_CLI_PKI_H

#define PKI_HELP "pki init --dir DIR | pki issue --ca-dir DIR --node NAME --out DIR [--days N]"

/* argv[0] is "init" or "issue". Exit status: 0, 1 (failed), 2 (usage). */
int pki_main(int argc, char **argv);

#endif
