"""moto's server, with its bucket-policy conditions evaluated as AWS evaluates them.

moto evaluates bucket-policy conditions without any request context, treats a condition
it cannot evaluate as met, and answers a statement whose condition is not met with a
denial, whatever its effect. A conditional Deny (the deployed TLS-only
`Bool aws:SecureTransport = false`) or a conditional Allow then denies every request. On
AWS, a condition on a key the request does not carry is not met (except with IfExists
operators, or `Null` asking for "true"), and a statement whose condition is not met does
not apply. Both rules are restored here. Requests to this server carry no condition keys,
so conditional statements never apply; unconditional ones still do.
"""

import sys

from moto.iam import access_control, policy_conditions
from moto.server import main

_verify = policy_conditions.TrustCondition.verify_condition


def verify_condition(self, actual_values):
    if not actual_values:
        if self._condition.endswith("IfExists"):
            return True
        if self._condition == "Null":
            return all(str(v).lower() == "true" for v in self._expected_value)
        return False
    return _verify(self, actual_values)


_statement_permits = access_control.IAMPolicyStatement.is_action_permitted


def is_action_permitted(self, action, resource="*", principal=None, incoming_condition_values=None):
    if self._statement.get("Condition") and not self._check_conditions(incoming_condition_values):
        return access_control.PermissionResult.NEUTRAL
    return _statement_permits(self, action, resource, principal, incoming_condition_values)


policy_conditions.TrustCondition.verify_condition = verify_condition
access_control.IAMPolicyStatement.is_action_permitted = is_action_permitted

if __name__ == "__main__":
    sys.exit(main())
