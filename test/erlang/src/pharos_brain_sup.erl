%% @doc Top supervisor. The store owns the statistics, so a crash of the Brain server (which the
%% supervisor restarts) loses no counts; the control port is independent of both.
-module(pharos_brain_sup).
-behaviour(supervisor).
-export([start_link/0, init/1]).

start_link() -> supervisor:start_link({local, ?MODULE}, ?MODULE, []).

init([]) ->
    Name = env(name),
    Children =
        [#{id => store, start => {pharos_brain_store, start_link, [env(state_dir)]}},
         #{id => brain, start => {pharos_brain, start_link, [Name, env(delay_ms)]}},
         #{id => ctl, start => {pharos_brain_ctl, start_link, [Name, env(control_port), env(control_port_file)]}}]
        ++ [#{id => report, start => {pharos_brain_report, start_link, [env(report_interval_ms)]}}
            || is_integer(env(report_interval_ms)), env(report_interval_ms) > 0],
    {ok, {#{strategy => one_for_one, intensity => 1000, period => 1}, Children}}.

env(Key) -> {ok, V} = application:get_env(pharos_brain, Key), V.
