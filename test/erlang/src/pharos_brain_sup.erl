%% @doc Top supervisor. The store owns the statistics, so a crash of the Brain server (which the
%% supervisor restarts) loses no counts; the control port is independent of both.
-module(pharos_brain_sup).
-behaviour(supervisor).
-export([start_link/0, init/1]).

start_link() -> supervisor:start_link({local, ?MODULE}, ?MODULE, []).

init([]) ->
    Name = env(name),
    %% names: several Brain processes on this node (each its own registered name; the first is the
    %% one the control port's crash and delay commands address).
    Names = case application:get_env(pharos_brain, names, []) of
                [] -> [Name];
                L -> L
            end,
    Scope = [#{id => pg, start => {pg, start_link, [env(pg_scope)]}} || env(pg) =:= true],
    Children =
        [#{id => store, start => {pharos_brain_store, start_link, [env(state_dir)]}},
         #{id => cluster, start => {pharos_brain_cluster, start_link, []}, restart => transient}]
        ++ Scope
        ++ [#{id => {brain, N}, start => {pharos_brain, start_link, [N, env(delay_ms)]}} || N <- Names]
        ++ [#{id => ctl, start => {pharos_brain_ctl, start_link, [hd(Names), env(control_port), env(control_port_file)]}}]
        ++ [#{id => report, start => {pharos_brain_report, start_link, [env(report_interval_ms)]}}
            || is_integer(env(report_interval_ms)), env(report_interval_ms) > 0],
    {ok, {#{strategy => one_for_one, intensity => 1000, period => 1}, Children}}.

env(Key) -> {ok, V} = application:get_env(pharos_brain, Key), V.
