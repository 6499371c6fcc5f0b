export { ConfigError, loadSettings, readConfigFile, describeSettings, int, num, bool, str, oneOf, list } from './settings.js';
export type { Setting, SettingsSpec, SettingsOf, SettingsSources } from './settings.js';
export { sharedSettings, describedAs } from './shared.js';
