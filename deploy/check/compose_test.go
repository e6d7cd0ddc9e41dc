package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func compose(t *testing.T) (string, string) {
	t.Helper()
	path, err := filepath.Abs("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, string(data)
}

func TestTheComposeFileIsValid(t *testing.T) {
	path, data := compose(t)
	for _, p := range CheckCompose(path, []byte(data)) {
		t.Errorf("%s", p)
	}
}

// Each case breaks docker-compose.yml in one place; the check must name the
// service and the key.
func TestBrokenComposeFilesAreNamed(t *testing.T) {
	path, data := compose(t)
	cases := []struct{ name, old, new, want string }{
		{"unknown key", "  read_only: true\n", "  read_onyl: true\n", "read_onyl"},
		{"wrong type", "      replicas: 2\n", "      replicas: two\n", "replicas"},
		{"password in the file", "postgres://mada:${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}@", "postgres://mada:hunter2@",
			"environment.DATABASE_URL: a credential"},
		{"secret in the file", "${MADA_JWT_SECRET:?set MADA_JWT_SECRET (32 characters or more)}", "a-secret-of-thirty-two-characters-at-least",
			"environment.MADA_JWT_SECRET: a credential"},
		{"a role missing", "  relay:\n    <<: *mada\n    command: [\"relay\"]\n", "  relay:\n    <<: *mada\n    command: [\"project\"]\n",
			`no service runs the role "relay"`},
		{"unofficial server", "image: redis:7.4", "image: bitnami/redis:7.4", "service redis: image"},
		{"unpinned server", "image: mongo:7.0", "image: mongo:latest", "service mongo: image"},
		{"server without health check", "      test: [\"CMD\", \"redis-cli\", \"ping\"]\n      interval: 2s\n      retries: 30\n", "      disable: true\n",
			"service redis: healthcheck"},
		{"writable root", "  read_only: true\n", "  read_only: false\n", "read_only: must be true"},
		{"capabilities", "  cap_drop:\n    - ALL\n", "", "cap_drop: must contain ALL"},
		{"before the migrations", "    migrate:\n      condition: service_completed_successfully\n", "",
			"depends_on.migrate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(data, c.old) {
				t.Fatalf("docker-compose.yml no longer contains %q: update the case", c.old)
			}
			broken := strings.Replace(data, c.old, c.new, 1)
			problems := CheckCompose(path, []byte(broken))
			for _, p := range problems {
				if strings.Contains(p.String(), c.want) {
					t.Logf("%s", p)
					return
				}
			}
			t.Errorf("no problem says %q; got %v", c.want, problems)
		})
	}
}
