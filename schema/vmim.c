/* The VirtualMachineInstanceMigration manifest (see vmim.h). */
#include "schema/vmim.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "schema/check.h"
#include "schema/input.h"
#include "schema/schema.h"
#include "schema/yaml.h"

#define MOFF(f) offsetof(struct vmim_manifest, f)
#define MSZ(f) sizeof(((struct vmim_manifest *)0)->f)

static const struct schema_field metadata_fields[] = {
	{"name", SCHEMA_STR, MOFF(name), MSZ(name), 0, NULL, NULL, 0},
	{"namespace", SCHEMA_STR, MOFF(namespace_), MSZ(namespace_), 0, NULL, NULL, 0},
	{0},
};

static const struct schema_field spec_fields[] = {
	{"vmiName", SCHEMA_STR, MOFF(vmi_name), MSZ(vmi_name), 0, NULL, NULL, 0},
	{0},
};

/* metadata and spec decode into the same flat struct (SCHEMA_OBJ at 0). */
static const struct schema_field vmim_fields[] = {
	{"apiVersion", SCHEMA_STR, MOFF(api_version), MSZ(api_version), 0, NULL, NULL, 0},
	{"kind", SCHEMA_STR, MOFF(kind), MSZ(kind), 0, NULL, NULL, 0},
	{"metadata", SCHEMA_OBJ, 0, 0, 0, metadata_fields, NULL, 0},
	{"spec", SCHEMA_OBJ, 0, 0, 0, spec_fields, NULL, 0},
	{0},
};

static int vmim_check(const struct vmim_manifest *m, struct schema_err *e)
{
	int rc;

	if (strcmp(m->api_version, "kubevirt.io/v1"))
		return schema_fail(e, "apiVersion", "apiVersion must be kubevirt.io/v1 (got \"%s\")",
				   m->api_version);
	if (strcmp(m->kind, "VirtualMachineInstanceMigration"))
		return schema_fail(e, "kind",
				   "kind must be VirtualMachineInstanceMigration, the only kind "
				   "ferryctl create makes (got \"%s\")",
				   m->kind);
	if ((rc = schema_check_dns_label(e, "metadata.name", m->name)))
		return rc;
	if (m->namespace_[0] && strcmp(m->namespace_, "default"))
		return schema_fail(e, "metadata.namespace",
				   "metadata.namespace: ferry has one namespace, \"default\" "
				   "(got \"%s\")",
				   m->namespace_);
	return schema_check_dns_label(e, "spec.vmiName", m->vmi_name);
}

static int from_tree(struct json_object *root, const char *origin, struct vmim_manifest *m,
		     char *err, size_t errlen)
{
	struct schema_err e;
	int rc;

	memset(m, 0, sizeof(*m));
	rc = schema_decode(root, vmim_fields, m, origin, err, errlen);
	if (rc)
		return rc;
	rc = vmim_check(m, &e);
	if (rc)
		schema_report(&e, root, origin, err, errlen);
	return rc;
}

/* YAML, or JSON when the text starts with '{' (JSON's types are then its
 * own: a number is not a name). */
static int to_tree(const char *text, size_t len, const char *origin, struct json_object **root,
		   char *err, size_t errlen)
{
	size_t i = 0;

	while (i < len && strchr(" \t\r\n", text[i]) && text[i])
		i++;
	if (i < len && text[i] == '{')
		return schema_json_parse(text, len, origin, root, err, errlen);
	return schema_yaml_to_json(text, len, origin, root, err, errlen);
}

int vmim_manifest_parse(const char *text, size_t len, const char *origin,
			struct vmim_manifest *m, char *err, size_t errlen)
{
	struct json_object *root = NULL;
	int rc;

	memset(m, 0, sizeof(*m));
	if (!origin)
		origin = "<manifest>";
	rc = to_tree(text, len, origin, &root, err, errlen);
	if (!rc)
		rc = from_tree(root, origin, m, err, errlen);
	json_object_put(root);
	return rc;
}

int vmim_manifest_load(const char *path, struct vmim_manifest *m, char *err, size_t errlen)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	memset(m, 0, sizeof(*m));
	rc = schema_read_file(path, &text, &len, err, errlen);
	if (rc)
		return rc;
	if (strlen(text) != len) {
		snprintf(err, errlen, "%s: contains a NUL byte", path);
		rc = -EINVAL;
	} else {
		rc = vmim_manifest_parse(text, len, path, m, err, errlen);
	}
	free(text);
	return rc;
}
