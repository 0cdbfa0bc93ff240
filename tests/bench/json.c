/* SPDX-License-Identifier: MIT */
/*
 * tests/bench/json.c - the small JSON reader of json.h.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

struct cursor {
	const char *p;
	struct json_doc *d;
};

static void ws(struct cursor *c)
{
	while (isspace((unsigned char)*c->p))
		c->p++;
}

/* A string into @out (escapes kept as the two characters after '\'). */
static int string(struct cursor *c, char *out, size_t len)
{
	size_t n = 0;

	if (*c->p != '"')
		return -1;
	c->p++;
	while (*c->p && *c->p != '"') {
		if (*c->p == '\\') {
			c->p++;
			if (!*c->p)
				return -1;
		}
		if (n + 1 < len)
			out[n++] = *c->p;
		c->p++;
	}
	if (*c->p != '"')
		return -1;
	c->p++;
	out[n] = 0;
	return 0;
}

static int leaf(struct cursor *c, const char *path, const char *val,
		bool is_str)
{
	struct json_leaf *l;

	if (c->d->n == JSON_MAX_LEAVES)
		return -1;
	l = &c->d->leaf[c->d->n++];
	snprintf(l->path, sizeof(l->path), "%s", path);
	snprintf(l->val, sizeof(l->val), "%s", val);
	l->is_str = is_str;
	return 0;
}

static int value(struct cursor *c, const char *path);

static int object(struct cursor *c, const char *path)
{
	c->p++; /* '{' */
	ws(c);
	if (*c->p == '}') {
		c->p++;
		return 0;
	}
	for (;;) {
		char key[64], sub[96];

		ws(c);
		if (string(c, key, sizeof(key)))
			return -1;
		ws(c);
		if (*c->p++ != ':')
			return -1;
		snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "",
			 key);
		if (value(c, sub))
			return -1;
		ws(c);
		if (*c->p == ',') {
			c->p++;
			continue;
		}
		if (*c->p == '}') {
			c->p++;
			return 0;
		}
		return -1;
	}
}

static int value(struct cursor *c, const char *path)
{
	char buf[96];
	size_t n;

	ws(c);
	if (*c->p == '{')
		return object(c, path);
	if (*c->p == '"')
		return string(c, buf, sizeof(buf)) ? -1 : leaf(c, path, buf, true);
	if (!strncmp(c->p, "true", 4) || !strncmp(c->p, "null", 4)) {
		n = 4;
	} else if (!strncmp(c->p, "false", 5)) {
		n = 5;
	} else {
		char *end;

		strtod(c->p, &end);
		if (end == c->p)
			return -1;
		n = (size_t)(end - c->p);
	}
	if (n >= sizeof(buf))
		return -1;
	memcpy(buf, c->p, n);
	buf[n] = 0;
	c->p += n;
	return leaf(c, path, buf, false);
}

int json_parse(const char *s, struct json_doc *d)
{
	struct cursor c = { s, d };

	d->n = 0;
	ws(&c);
	if (*c.p != '{' || object(&c, ""))
		return -1;
	ws(&c);
	return *c.p ? -1 : 0;
}

const struct json_leaf *json_get(const struct json_doc *d, const char *path)
{
	unsigned i;

	for (i = 0; i < d->n; i++)
		if (!strcmp(d->leaf[i].path, path))
			return &d->leaf[i];
	return NULL;
}

double json_num(const struct json_doc *d, const char *path)
{
	const struct json_leaf *l = json_get(d, path);

	if (!l || l->is_str)
		return NAN;
	return strtod(l->val, NULL);
}
