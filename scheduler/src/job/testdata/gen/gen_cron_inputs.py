# Writes the inputs of the cron golden files (see README.md): next_in.tsv and parse_in.tsv.
import random
random.seed(7)
zones = ["", "TZ=America/New_York ", "CRON_TZ=America/Sao_Paulo ", "CRON_TZ=Europe/Rome ",
         "TZ=Australia/Lord_Howe ", "CRON_TZ=Asia/Kolkata ", "CRON_TZ=Pacific/Apia ",
         "TZ=America/Santiago ", "CRON_TZ=Europe/London ", "CRON_TZ=Pacific/Chatham ", "TZ=UTC ", "CRON_TZ=Local "]
bodies = [
 "0 0 * * * *", "0 30 2 * * *", "0 0 2 * * *", "0 30 1 * * *", "0 0 0 * * *", "* * * * * *",
 "*/15 * * * * *", "0 */5 * * * *", "15/35 20-35/15 * * * *", "0 0 0 29 2 *", "0 0 0 29 Feb ?",
 "0 0 12 31 * *", "0 0 0 1 * *", "0 0 9 10 * ?", "0 0 0 * * MON", "0 0 0 1,15 * SUN",
 "0 0 0 */10 * sun", "0 0 0 * * */2", "0 0 0 */2 * SUN", "30 45 23 L * *".replace("L","31"),
 "0 0 0 30 2 *", "0 0 0 31 4 ?", "0 0 3 3 * ?", "1 2 3 4 5 6", "0 0 0 1 jan-mar,oct *",
 "0 0 0 ? Feb Mon/2", "59 59 23 31 12 *", "0 0 0 29 2 1", "0 15,45 0-3 * * *", "0 30 2 11 Mar ?",
 "0 30 1 04 Nov ?", "0 0 * 25 Oct *", "0 0 * 26 Mar *", "0 0,30 * * * ?", "0 0 24-23 * * *".replace("24-23","0-23/6"),
 "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly",
 "0 0 0 2 3 *", "0 */7 */5 * * *", "5-10 * * * * *", "0 0 0 * * 0", "0 0 0 * * 6", "*/59 * * * * *",
]
times = [
 "2012-03-11T00:00:00-05:00", "2012-03-11T01:00:00-05:00", "2012-03-11T06:59:59.999999999Z",
 "2012-11-04T00:00:00-04:00", "2012-11-04T01:45:00-04:00", "2012-11-04T01:00:00-05:00",
 "2018-10-17T05:00:00-04:00", "2018-11-03T23:30:00-03:00", "2018-02-14T05:00:00-05:00",
 "2026-10-23T12:00:00+02:00", "2026-10-25T00:30:00Z", "2026-03-29T00:59:59Z",
 "2011-12-29T10:00:00Z", "2011-12-29T23:59:59Z", "2024-02-28T23:59:59Z", "2023-02-28T23:59:59Z",
 "2099-02-27T00:00:00Z", "2000-02-28T12:00:00Z", "2024-12-31T23:59:59.5Z", "2024-04-06T15:30:00Z",
 "2024-10-05T15:00:00Z", "2025-04-05T14:59:59Z", "2012-07-09T23:35:51Z", "2016-01-03T13:09:03+05:30",
 "1999-12-31T23:59:59.000000001Z", "2024-09-07T03:00:00Z", "2025-03-30T00:00:00Z",
]
out = []
for z in zones:
    for b in bodies:
        spec = (z + b)
        for t in random.sample(times, 4):
            out.append(f"{spec}\t{t}")
every = ["@every 1s", "@every 0s", "@every 1.5s", "@every 10ms", "@every 1h30m", "@every -1s", "@every 5ns", "@every 2562047h"]
for e in every:
    for t in times[:6]:
        out.append(f"{e}\t{t}")
open("next_in.tsv","w").write("\n".join(out)+"\n")
errs = ["", "xyz", "60 0 * * * *", "0 60 * * * *", "* * 24 * * *", "* * * 0 * *", "* * * 32 * *", "* * * * 13 *",
 "* * * * 0 *", "* * * * * 7", "* * * * * XYZ", "* 5 j * * *", "@every Xm", "@every", "@every ", "@unrecognized",
 "@daily ", " @daily", "* * * *", "* * * * * * *", "TZ=UTC", "CRON_TZ=Asia/Tokyo", "TZ=", "CRON_TZ=Europe/Rome @every 1h",
 "TZ=Asia/Tokyo @every 30m", "TZ=Mars/Phobos * * * * * *", "TZ=../etc/passwd * * * * * *", "TZ=/etc * * * * * *",
 "TZ=america/new_york * * * * * *", "15/0 * * * * *", "*/0 * * * * *", "5--5 * * * * *", "*//2 * * * * *",
 "*/-12 * * * * *", "1-x * * * * *", "jan-x * * * * *", "5-3 * * * * *", "* * * * jan-x *", "* * * * * mon-sun",
 "* * * * * sun-sat", "* * * * FEB-JAN *", "99999999999999999999 * * * * *", "+5 * * * * *", "-5 * * * * *",
 "*-5 * * * * *", "?/2 * * * * *", ", * * * * *", "1,,2 * * * * *", "0 0 0 ? * ?", "R5/PT1S", "R/PT10M", "PT1S",
 "TZ=UTC\t* * * * * *", "CRON_TZ=Europe/Rome   0 0 9 * * *", "TZ=UTC   ", "@every 1h ", "TZ=UTC @every1h",
 "0\u00a00 * * * * *", "MON * * * * *", "* * * * Jan Mon", "* * * * JAN,feb sUn", "* * * * * 1-5/2",
 "0 0 0 1 1 ? extra", "@weekly\n", "@every 9223372036854775807ns", "@every 9223372036854775808ns",
 "1 2 3 4 5 6", "* * * * * ?", "0-59/60 * * * * *", "60/1 * * * * *", "0/100 * * * * *",
]
open("parse_in.tsv","w").write("\n".join("P:"+e.replace("\n","\\n").replace("\t","\\t").replace("\u00a0","\\u00a0") for e in errs)+"\n")
