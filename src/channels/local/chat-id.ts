export const LOCAL_PREFIX = 'local:';
/** `local:<name>`, where the name is also a valid group folder name. */
export const LOCAL_CHAT = /^local:[a-z0-9][a-z0-9_-]{0,63}$/;
