package main

import (
	"os"
	"strings"
	"testing"
)

func TestTheDockerfileIsClean(t *testing.T) {
	data, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range CheckDockerfile("Dockerfile", data) {
		t.Errorf("%s", p)
	}
}

// Each case breaks the Dockerfile in one place; the check must name the line's
// instruction or BuildKit's rule.
func TestBrokenDockerfilesAreNamed(t *testing.T) {
	data, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, old, new, want string }{
		{"shell-form CMD", `CMD ["serve"]`, `CMD serve`, "CMD: use the exec form"},
		{"shell-form ENTRYPOINT", `ENTRYPOINT ["/usr/local/bin/mada"]`, `ENTRYPOINT /usr/local/bin/mada`, "ENTRYPOINT: use the exec form"},
		{"root", `USER 10001:10001`, `USER root`, `USER: USER "root"`},
		{"no user", "USER 10001:10001\n", "", "USER: no USER"},
		{"latest base", `FROM debian:bookworm-slim AS runtime`, `FROM debian:latest AS runtime`, "FROM: \"debian:latest\""},
		{"untagged base", `FROM debian:bookworm-slim AS runtime`, `FROM debian AS runtime`, "has no tag"},
		{"recommends", `apt-get install -y --no-install-recommends ca-certificates`, `apt-get install -y ca-certificates`, "without --no-install-recommends"},
		{"apt lists", " \\\n && rm -rf /var/lib/apt/lists/* \\\n && useradd", " \\\n && useradd", "apt's lists stay"},
		{"credential", `ENV MADA_LISTEN=0.0.0.0:8080`, `ENV MADA_JWT_SECRET=hunter2`, "ENV MADA_JWT_SECRET: a credential"},
		{"stage casing (BuildKit)", `AS build`, `AS Build`, "StageNameCasing"},
		{"download (project)", `COPY --from=build /src/target/release/mada /usr/local/bin/mada`, `ADD https://example.com/mada /usr/local/bin/mada`, "ADD: a download"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(string(data), c.old) {
				t.Fatalf("the Dockerfile no longer contains %q: update the case", c.old)
			}
			broken := strings.Replace(string(data), c.old, c.new, 1)
			problems := CheckDockerfile("Dockerfile", []byte(broken))
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
