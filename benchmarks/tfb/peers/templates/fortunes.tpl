<!DOCTYPE html>
<html>
<head><title>Fortunes</title></head>
<body>
<table>
<tr><th>id</th><th>message</th></tr>
% for f in fortunes:
<tr><td>{{f['id']}}</td><td>{{f['message']}}</td></tr>
% end
</table>
</body>
</html>
