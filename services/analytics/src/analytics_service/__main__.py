"""python -m analytics_service: the faust-streaming analytics apps and the alert rules."""

import sys

from trading_platform.service import main as run_service
from trading_platform.settings import ConfigError, load_settings

from analytics_service.config import AnalyticsSettings
from analytics_service.rules import RulesError, load_rules
from analytics_service.service import build


def main() -> None:
    try:  # the rules are checked before anything starts: a bad file names the rule and the key, exit code 2
        load_rules(load_settings(AnalyticsSettings).analytics.rules_file)
    except RulesError as error:
        print(f"analytics: {error.code}", file=sys.stderr)
        raise SystemExit(2) from None
    except ConfigError:
        pass  # the runner reports it, naming every bad key
    run_service(AnalyticsSettings, build)


if __name__ == "__main__":
    main()
