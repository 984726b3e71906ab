// Which of Claude Code's own tools a pincer agent is offered, and why each other one is not. A real model picks
// from what a request shows it: a built-in that looks like a pincer capability but lives and dies inside one
// Claude Code session (its cron, its wake-ups, its agent-team messages) would take the user's request and
// silently never do it. Every built-in the SDK names is reviewed here, so an upgrade that adds one fails the
// test that compares this table with the SDK's list until someone decides.

export interface BuiltinToolReview {
  offered: boolean;
  /** Why it is offered or withheld, as docs/ARCHITECTURE.md repeats it. */
  why: string;
}

const OFFERED = (why: string): BuiltinToolReview => ({ offered: true, why });
const WITHHELD = (why: string): BuiltinToolReview => ({ offered: false, why });

const SESSION_LOCAL = 'lives inside one Claude Code session, which pincer closes when idle: it would never fire';
const NO_KEYBOARD = 'waits for an interactive user at a terminal; a chat has none';
const NO_HOST_UI = "belongs to a host application's own interface, which pincer is not";
const TASK_LIST =
  'a to-do list inside one session that shares its name with pincer\'s scheduled tasks ("create a task" must not land there), and adds reminders to use it to every turn';
const BACKGROUND = 'works in the background after the turn ends; pincer runs work in the foreground so every answer belongs to its turn';

export const BUILTIN_TOOLS: Readonly<Record<string, BuiltinToolReview>> = {
  Agent: OFFERED('sub-agents for parts of a task (teams), in the foreground'),
  Bash: OFFERED('commands in the sandbox'),
  Read: OFFERED('files'),
  Write: OFFERED('files'),
  Edit: OFFERED('files'),
  Glob: OFFERED('finding files'),
  Grep: OFFERED('searching files'),
  NotebookEdit: OFFERED('Jupyter notebooks in the group folder'),
  WebFetch: OFFERED("the web, through the group's egress policy"),
  WebSearch: OFFERED('the web, at the model API, where the egress policy lets the group out'),
  Skill: OFFERED("the group's skills (e.g. the browser)"),
  ToolSearch: OFFERED("loads the schemas of deferred tools (the web tools, notebooks, a group's own MCP servers)"),
  TodoWrite: OFFERED('a to-do list for the work at hand (where Claude Code enables it)'),
  ListMcpResourcesTool: OFFERED("resources of the group's own MCP servers"),
  ReadMcpResourceTool: OFFERED("resources of the group's own MCP servers"),
  ReadMcpResourceDirTool: OFFERED("resources of the group's own MCP servers"),
  WaitForMcpServers: OFFERED("waits for the group's own MCP servers to connect"),

  TaskCreate: WITHHELD(TASK_LIST),
  TaskGet: WITHHELD(TASK_LIST),
  TaskList: WITHHELD(TASK_LIST),
  TaskUpdate: WITHHELD(TASK_LIST),
  CronCreate: WITHHELD(`${SESSION_LOCAL}; schedule_task is pincer's scheduler`),
  CronDelete: WITHHELD(`${SESSION_LOCAL}; cancel_task is pincer's`),
  CronList: WITHHELD(`${SESSION_LOCAL}; list_tasks is pincer's`),
  ScheduleWakeup: WITHHELD(`${SESSION_LOCAL}; schedule_task is pincer's scheduler`),
  RemoteTrigger: WITHHELD("triggers of Anthropic's cloud, not pincer's scheduler; schedule_task is"),
  SendMessage: WITHHELD("messages between agents of a Claude Code team, not to the chat; send_message is pincer's"),
  ListAgents: WITHHELD('lists the agents SendMessage reaches, which is withheld'),
  SendUserMessage: WITHHELD("a message to Claude Code's own user interface; send_message is pincer's"),
  SendUserFile: WITHHELD("a file to Claude Code's own user interface; send_file is pincer's"),
  PushNotification: WITHHELD("a notification through Claude Code's own apps; send_message is pincer's"),
  ReadNotifications: WITHHELD("notifications of Claude Code's own apps"),
  AskUserQuestion: WITHHELD(`${NO_KEYBOARD}; ask in the reply instead`),
  EnterPlanMode: WITHHELD(NO_KEYBOARD),
  ExitPlanMode: WITHHELD(NO_KEYBOARD),
  EnterWorktree: WITHHELD('git worktrees of a coding session; a group folder is not a repository checkout'),
  ExitWorktree: WITHHELD('git worktrees of a coding session; a group folder is not a repository checkout'),
  Monitor: WITHHELD(BACKGROUND),
  TaskStop: WITHHELD(`stops background work; ${BACKGROUND}`),
  Workflow: WITHHELD(BACKGROUND),
  SetGoal: WITHHELD('a goal that keeps one Claude Code session going; a chat turn ends with its answer'),
  SubagentHandback: WITHHELD("hands work back in Claude Code's own agent teams"),
  EndConversation: WITHHELD("ends a conversation in Anthropic's apps; pincer ends sessions itself"),
  ReportFindings: WITHHELD(`code-review findings for ${NO_HOST_UI}`),
  Artifact: WITHHELD(NO_HOST_UI),
  ClaudeDesign: WITHHELD(NO_HOST_UI),
  Projects: WITHHELD(NO_HOST_UI),
  propose_skills: WITHHELD(NO_HOST_UI),
  SendFeedback: WITHHELD('feedback to Anthropic about Claude Code'),
  ShareOnboardingGuide: WITHHELD("Claude Code's own onboarding"),
  ShowOnboardingRolePicker: WITHHELD("Claude Code's own onboarding"),
  OfferChromeSetup: WITHHELD("sets up Claude Code's Chrome extension; the browser skill is pincer's"),
  LSP: WITHHELD('language servers of an editor, which the sandbox does not run'),
  PowerShell: WITHHELD('Windows only; the sandbox runs Linux'),
};

const names = (offered: boolean) =>
  Object.entries(BUILTIN_TOOLS)
    .filter(([, review]) => review.offered === offered)
    .map(([name]) => name);

/** The base set of built-ins a session has (the SDK's `tools`). */
export const OFFERED_BUILTIN_TOOLS: readonly string[] = names(true);
/** Also named as `disallowedTools`, which removes them from sub-agents and from calls the harness makes itself. */
export const WITHHELD_BUILTIN_TOOLS: readonly string[] = names(false);
